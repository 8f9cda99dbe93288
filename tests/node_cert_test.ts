/**
 * Unit tests of the check a joiner runs on its own TLS files: its
 * certificate must name it and be signed by the CA it was given. The files
 * are made by `writeCerts` (the openssl tool): ignored without openssl
 * outside CI, run (and failing) in CI.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { writeCerts } from "../lib/security/certs.ts";
import { nodeCertProblem } from "../lib/security/node_cert.ts";
import { Buffer } from "node:buffer";

const HAVE_OPENSSL =
  new Deno.Command("sh", { args: ["-c", "command -v openssl"], stdout: "null" }).outputSync().success;

Deno.test({
  name: "a node certificate passes only for its own id and with the CA that signed it",
  ignore: !HAVE_OPENSSL && !Deno.env.get("CI"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvstore-node-cert-" });
    try {
      await writeCerts(`${dir}/ours`, [{ id: "node4", host: "127.0.0.1" }], { days: 1 });
      await writeCerts(`${dir}/other`, [{ id: "node4", host: "127.0.0.1" }], { days: 1 });
      const files = (d: string, caDir = d) => ({
        ca: readFileSync(`${dir}/${caDir}/ca.pem`),
        cert: readFileSync(`${dir}/${d}/node4.pem`),
        key: readFileSync(`${dir}/${d}/node4.key`),
      });
      assert.equal(nodeCertProblem(files("ours"), "node4"), undefined);
      assert.match(
        nodeCertProblem(files("ours"), "node5")!,
        /common name is "node4", not this node's id "node5"/,
      );
      assert.match(nodeCertProblem(files("other", "ours"), "node4")!, /is not signed by the CA/);
      const garbage = { ...files("ours"), cert: Buffer.from("not a certificate") };
      assert.match(nodeCertProblem(garbage, "node4")!, /not a PEM certificate/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
