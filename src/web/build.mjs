#!/usr/bin/env node
// Builds the dashboard's static assets into dist/web/public/:
//   index.html            from src/web/public/index.html, with the hashed asset names
//   app-<hash>.js         src/web/client/main.ts + uPlot, bundled and minified (esbuild)
//   app-<hash>.css        src/web/client/styles.css + uPlot's CSS
//   *.gz, *.br            precompressed copies, served when the browser accepts them
// Everything the page needs is in that directory: no CDN, works air-gapped.
//
// Usage: node src/web/build.mjs [--outdir DIR] [--dev]   (--dev: no minification, inline source maps)
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const args = process.argv.slice(2);
const dev = args.includes('--dev');
const oi = args.indexOf('--outdir');
const outdir = oi >= 0 ? resolve(args[oi + 1]) : join(root, 'dist/web/public');

const t0 = performance.now();
await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: 'src/web/client/main.ts', 'app-style': 'src/web/client/styles.css' },
  bundle: true,
  format: 'esm',
  target: ['chrome109', 'firefox115', 'safari16'],
  minify: !dev,
  sourcemap: dev ? 'inline' : false,
  legalComments: 'eof',
  entryNames: '[name]-[hash]',
  outdir,
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const outputs = Object.keys(result.metafile.outputs).map((p) => resolve(root, p));
const js = outputs.find((p) => /\/app-[^/]+\.js$/.test(p));
const css = outputs.find((p) => /\/app-style-[^/]+\.css$/.test(p));
if (!js || !css) throw new Error(`build: missing outputs in ${outputs.join(', ')}`);
// the CSS entry also yields an empty JS stub: drop it
for (const p of outputs) if (/\/app-style-[^/]+\.js$/.test(p)) await rm(p, { force: true });

const base = (p) => p.slice(p.lastIndexOf('/') + 1);
let html = await readFile(join(here, 'public/index.html'), 'utf8');
// relative to the page (served at /), so that a proxy may mount the dashboard under a path
html = html.replace('%APP_JS%', `ui/${base(js)}`).replace('%APP_CSS%', `ui/${base(css)}`);
if (html.includes('%APP_')) throw new Error('build: unreplaced placeholder in index.html');
await writeFile(join(outdir, 'index.html'), html);

// precompress
const sizes = [];
for (const name of (await readdir(outdir)).sort()) {
  const file = join(outdir, name);
  const buf = await readFile(file);
  let gz = 0;
  let br = 0;
  if (buf.length >= 512) {
    const g = gzipSync(buf, { level: 9 });
    const b = brotliCompressSync(buf, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: buf.length },
    });
    await writeFile(`${file}.gz`, g);
    await writeFile(`${file}.br`, b);
    gz = g.length;
    br = b.length;
  }
  sizes.push({ name, bytes: buf.length, gz, br });
}
const manifest = {
  builtAt: new Date().toISOString(),
  files: sizes,
  hash: createHash('sha256').update(html).digest('hex').slice(0, 16),
};
await writeFile(join(outdir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

if (!args.includes('--quiet')) {
  for (const s of sizes) {
    console.log(`  ${s.name.padEnd(28)} ${String(s.bytes).padStart(8)} B${s.br ? `  (br ${s.br} B, gz ${s.gz} B)` : ''}`);
  }
  console.log(`web: built ${outdir} in ${Math.round(performance.now() - t0)} ms`);
}
