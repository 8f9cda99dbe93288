/**
 * Throwaway redis-servers for integration tests: started on free ports in
 * temp dirs, stopped by PID, plus a direct connection for reaching behind a
 * node's back. Tests using them are ignored (visibly) only when
 * redis-server is missing and CI is not set.
 */
import { Redis } from "ioredis";
import {
  type RedisProcess,
  redisServerPath,
  type StartRedisOptions,
  startRedisServer,
} from "../../lib/redis_server.ts";
import { freePort } from "./ports.ts";

/** The nodes' Redis key prefix (storage.redis_key_prefix's default). */
export const REDIS_PREFIX = "kvstore:";
/** Whether a redis-server is installed here. */
export const redisAvailable = redisServerPath() !== undefined;
/** Redis tests are ignored only without redis-server and outside CI. */
export const ignoreRedis = !redisAvailable && !Deno.env.get("CI");

/** `count` redis-servers on free ports in temp dirs (throwaway: no persistence unless asked). */
export async function startRedises(
  count: number,
  opts: Partial<StartRedisOptions> = { appendOnly: false },
): Promise<{ procs: RedisProcess[]; dirs: string[] }> {
  const procs: RedisProcess[] = [];
  const dirs: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const dir = await Deno.makeTempDir({ prefix: "kvstore-test-redis-" });
      dirs.push(dir);
      procs.push(await startRedisServer({ ...opts, port: freePort(), dir }));
    }
  } catch (err) {
    await stopRedises(procs, dirs);
    throw err;
  }
  return { procs, dirs };
}

/** kill -9 every server and remove its dir. */
export async function stopRedises(procs: RedisProcess[], dirs: string[]): Promise<void> {
  await Promise.all(procs.map((p) => p.kill9()));
  await Promise.all(dirs.map((d) => Deno.remove(d, { recursive: true }).catch(() => {})));
}

/** A direct Redis connection for reaching behind the cluster's back. */
export async function redisAt(port: number): Promise<Redis> {
  const r = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  return r;
}
