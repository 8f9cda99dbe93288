/**
 * Runs the programs in examples/ as a user would, under Deno or Node, and
 * gives back what they printed.
 *
 * Under Deno an example imports the library by the package's name
 * (`@kvstore/kvstore`, deno.json's `exports`), run from the repository as
 * its README says. Under Node it runs against the npm package that
 * `scripts/build_npm.ts` builds, installed in a throwaway project (see
 * {@link nodeProject}).
 */
import { text } from "./cluster.ts";

/** The repository root. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** A finished example run. */
export interface ExampleRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Longest an example may run; it is killed after that (and the test fails). */
const EXAMPLE_LIMIT_MS = 60_000;

async function run(cmd: string, args: string[], cwd: string): Promise<ExampleRun> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(EXAMPLE_LIMIT_MS),
  }).output();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Runs `examples/NAME` under Deno with ARGS. */
export function runDenoExample(name: string, ...args: string[]): Promise<ExampleRun> {
  return run(Deno.execPath(), ["run", "-A", "--quiet", `examples/${name}`, ...args], ROOT);
}

/** The output lines of a run, failing with its stderr when it did not exit 0. */
export function linesOf(r: ExampleRun): string[] {
  if (r.code !== 0) throw new Error(`example exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim().split("\n");
}

/**
 * A throwaway Node project with the npm package built into its
 * node_modules/@kvstore/kvstore. Its dependencies are linked from the
 * repository's node_modules (the same pinned versions) instead of fetched,
 * so the test does not need the registry.
 */
export async function nodeProject(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-node-" });
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  try {
    const pkgDir = `${dir}/node_modules/@kvstore/kvstore`;
    const build = await run(Deno.execPath(), [
      "run",
      "-A",
      "--quiet",
      "scripts/build_npm.ts",
      "--out",
      pkgDir,
    ], ROOT);
    if (build.code !== 0) throw new Error(`build_npm failed:\n${build.stdout}\n${build.stderr}`);
    const pkg = JSON.parse(await Deno.readTextFile(`${pkgDir}/package.json`));
    for (const dep of Object.keys(pkg.dependencies)) {
      const target = await Deno.realPath(`${ROOT}node_modules/${dep}`);
      await Deno.mkdir(`${dir}/node_modules/${dep.split("/").slice(0, -1).join("/")}`, { recursive: true });
      await Deno.symlink(target, `${dir}/node_modules/${dep}`);
    }
    await Deno.writeTextFile(`${dir}/package.json`, JSON.stringify({ type: "module", private: true }));
    return { dir, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

/**
 * Runs `examples/NAME` under Node in `project`: the TypeScript is stripped
 * to JavaScript by esbuild (imports untouched, so `@kvstore/kvstore` comes
 * from the project's node_modules).
 */
export async function runNodeExample(project: string, name: string, ...args: string[]): Promise<ExampleRun> {
  const esbuild = await import("esbuild");
  const source = await Deno.readTextFile(`${ROOT}examples/${name}`);
  const js = await esbuild.transform(source, { loader: "ts", format: "esm", target: "node20" });
  await esbuild.stop();
  const file = `${project}/${name.replace(/\.ts$/, ".mjs")}`;
  await Deno.writeTextFile(file, js.code);
  return await run("node", [file, ...args], project);
}

/** What both rate limiters (kvstore's API and ioredis over RESP) print, in order. */
export const RATE_LIMITER_OUTPUT = [
  ...[1, 2, 3, 4, 5].map((i) => `request ${i}: allowed (${i}/5 this window)`),
  "request 6: refused (6/5 this window)",
  "request 7: refused (7/5 this window)",
  "after the window: allowed (1/5 this window)",
];

/**
 * Type-checks `source` as a Node project's TypeScript against the package's
 * declarations (tsc from npm, Node's module resolution): tsc's output, "" when clean.
 */
export async function typeCheckInNode(project: string, source: string): Promise<string> {
  await Deno.writeTextFile(`${project}/consumer.ts`, source);
  const tsconfig = {
    compilerOptions: { strict: true, noEmit: true, target: "es2022", module: "nodenext", types: [] },
    files: ["consumer.ts"],
  };
  await Deno.writeTextFile(`${project}/tsconfig.json`, JSON.stringify(tsconfig));
  const r = await run(
    Deno.execPath(),
    ["run", "-A", "--quiet", "npm:typescript@5.9.3/tsc", "-p", project],
    project,
  );
  return r.code === 0 ? "" : `${r.stdout}${r.stderr}` || `tsc exited ${r.code}`;
}
