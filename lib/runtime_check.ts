/**
 * Which Deno releases the store is known to be safe on.
 *
 * Deno 2.9.4 to 2.9.6 abort a gRPC server when a grpc-js client closes its
 * channel: the client's GOAWAY frame trips an assertion inside Deno's HTTP/2
 * (denoland/deno#36788), exit 134 or 139. A node started on one of them
 * warns at startup; the regression test is tests/client_hangup_test.ts.
 */

/** The Deno release the suite is run and measured on. */
export const TESTED_DENO = "2.9.3";

/** Releases with the GOAWAY abort, inclusive. */
const DEFECT_FROM: Version = [2, 9, 4];
const DEFECT_TO: Version = [2, 9, 6];

type Version = [number, number, number];

/** "2.9.6" (or "2.9.6-rc.1", "2.9.6+abc") as numbers; undefined if it is not a version. */
export function parseVersion(v: string): Version | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * The warning a node prints when it runs on `denoVersion`, or undefined
 * when that release is not known to have the defect.
 */
export function runtimeWarning(denoVersion: string): string | undefined {
  const v = parseVersion(denoVersion);
  if (!v || compare(v, DEFECT_FROM) < 0 || compare(v, DEFECT_TO) > 0) return undefined;
  return `Deno ${denoVersion} has a defect in its HTTP/2 (denoland/deno#36788): a client that closes ` +
    `its gRPC channel can abort this node (exit 134 or 139). Run the store on Deno ${TESTED_DENO}, the ` +
    `tested release: npx -y deno@${TESTED_DENO} task server ...`;
}
