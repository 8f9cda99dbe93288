/**
 * Builds the client library as an npm package in dist/npm/, for Node programs.
 *
 * Only tools npm provides: esbuild bundles mod.ts and the parts of lib/ it
 * reaches into one ES module (the proto text inlined, as `deno compile`
 * embeds it), leaving the gRPC packages as dependencies; TypeScript's tsc
 * writes the declarations from the same sources. `deno task build:npm`
 * (`-- --out DIR` to build elsewhere).
 */
import * as esbuild from "esbuild";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url).pathname;
/** Where the package goes: dist/npm/, or `--out DIR` (tests build into a temp dir). */
const outArg = Deno.args.indexOf("--out");
const OUT = outArg >= 0 ? `${Deno.args[outArg + 1].replace(/\/$/, "")}/` : `${ROOT}dist/npm/`;
/** Packages the bundle imports at run time, pinned as the store pins them. */
const DEPENDENCIES = ["@grpc/grpc-js", "@grpc/proto-loader", "protobufjs"];

/** The version of an import-map entry "npm:name@version". */
function pinned(name: string): string {
  const spec = (denoJson.imports as Record<string, string>)[name];
  const m = spec && /@([^@/]+)$/.exec(spec);
  if (!m) throw new Error(`deno.json imports has no pinned npm entry for ${name}`);
  return m[1];
}

await Deno.remove(OUT, { recursive: true }).catch(() => {});
await Deno.mkdir(OUT, { recursive: true });

await esbuild.build({
  entryPoints: [`${ROOT}mod.ts`],
  outfile: `${OUT}index.js`,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: DEPENDENCIES,
  loader: { ".proto": "text" },
  logLevel: "warning",
});
await esbuild.stop();

const tsc = await new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    "npm:typescript@5.9.3/tsc",
    "--declaration",
    "--emitDeclarationOnly",
    "--noCheck",
    "--allowImportingTsExtensions",
    "--rewriteRelativeImportExtensions",
    "--skipLibCheck",
    "--target",
    "es2022",
    "--module",
    "nodenext",
    "--outDir",
    `${OUT}types`,
    `${ROOT}mod.ts`,
  ],
  cwd: ROOT,
}).output();
if (!tsc.success) {
  throw new Error(
    `tsc failed:\n${new TextDecoder().decode(tsc.stdout)}${new TextDecoder().decode(tsc.stderr)}`,
  );
}

await keepPublicDeclarations(`${OUT}types/`);

const pkg = {
  name: denoJson.name,
  version: denoJson.version,
  description: "Client library of kvstore, a Dynamo-style distributed key-value store",
  type: "module",
  main: "./index.js",
  types: "./types/mod.d.ts",
  exports: { ".": { types: "./types/mod.d.ts", default: "./index.js" } },
  files: ["index.js", "types/", "kvstore.proto"],
  engines: { node: ">=20" },
  dependencies: Object.fromEntries(DEPENDENCIES.map((d) => [d, pinned(d)])),
};
await Deno.writeTextFile(`${OUT}package.json`, JSON.stringify(pkg, null, 2) + "\n");
await Deno.copyFile(`${ROOT}proto/kvstore.proto`, `${OUT}kvstore.proto`);
/**
 * tsc declares every module mod.ts reaches; the public face (mod.ts,
 * lib/client's facade, records and error) imports none of the others, so
 * only those are shipped, with imports naming the .js Node resolves.
 */
async function keepPublicDeclarations(dir: string): Promise<void> {
  const keep = ["mod.d.ts", ...["kvstore", "types", "errors"].map((f) => `lib/client/${f}.d.ts`)];
  const texts = await Promise.all(keep.map((f) => Deno.readTextFile(dir + f)));
  await Deno.remove(dir, { recursive: true });
  await Deno.mkdir(`${dir}lib/client`, { recursive: true });
  for (const [i, f] of keep.entries()) {
    const text = texts[i].replace(/^((?:import|export)\b[^;]*? from "\.{1,2}\/[^"]+)\.ts"/gm, '$1.js"');
    for (const m of text.matchAll(/^(?:import|export)\b[^;]*? from "(\.{1,2}\/[^"]+)\.js"/gm)) {
      const target = new URL(`${m[1]}.d.ts`, `file://${dir}${f}`).pathname.slice(dir.length);
      if (!keep.includes(target)) throw new Error(`${f} imports ${target}, which is not shipped`);
    }
    await Deno.writeTextFile(dir + f, text);
  }
}

console.log(`built ${OUT} (${pkg.name}@${pkg.version})`);
