/**
 * libfaketime for tests that run a node with its clock off: where the
 * library is, whether it is installed, and the environment that sets a
 * process's wall clock back while its monotonic clocks (timers) stay right.
 */

export const FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/** Whether libfaketime is installed. */
export const haveFaketime = (() => {
  try {
    return Deno.statSync(FAKETIME_LIB).isFile;
  } catch {
    return false;
  }
})();

/** Tests that need libfaketime skip only when it is absent and CI is unset. */
export const ignoreWithoutFaketime = !haveFaketime && !Deno.env.get("CI");

/** The environment that runs a process `seconds` behind. */
export function behind(seconds: number): Record<string, string> {
  return { LD_PRELOAD: FAKETIME_LIB, FAKETIME: `-${seconds}s`, FAKETIME_DONT_FAKE_MONOTONIC: "1" };
}
