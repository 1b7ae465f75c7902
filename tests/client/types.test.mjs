// The TypeScript declarations (src/web/client.d.ts) type-check, with
// `--strict`, against types-usage.ts, which uses the API as docs/CLIENT.md
// does: once as a browser project (lib DOM) and once as a Node project
// without DOM types. TypeScript comes from tests/client/package.json
// (`npm install` there; tests/run-all.sh does it): without it this fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const tsc = path.join(here, 'node_modules/typescript/bin/tsc');
const usage = path.join(here, 'types-usage.ts');
const declarations = path.join(root, 'src/web/client.d.ts');

/** Runs tsc on the usage file with `lib`; returns its output; fails on any error. */
function check(lib) {
  assert.ok(existsSync(tsc),
    `TypeScript is not installed (no ${tsc}): run \`npm install\` in tests/client (tests/run-all.sh does it)`);
  // No --skipLibCheck: it would skip client.d.ts itself.
  const args = [tsc, '--noEmit', '--strict', '--listFiles', '--pretty', 'false', '--target', 'es2022',
    '--module', 'esnext', '--moduleResolution', 'bundler', '--lib', lib, usage];
  const run = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.error, undefined, `tsc did not run: ${run.error}`);
  const out = `${run.stdout}${run.stderr}`;
  assert.equal(run.status, 0, `tsc --strict --lib ${lib} found errors:\n${out.split('\n').filter((l) => !l.startsWith('/')).join('\n')}`);
  return out.split('\n').map((l) => path.resolve(root, l.trim()));
}

for (const [name, lib] of [['a browser project (lib DOM)', 'es2022,dom'], ['a Node project (no DOM types)', 'es2022']]) {
  test(`client.d.ts type-checks strictly in ${name}`, () => {
    const files = check(lib);
    // The import of client.js resolved to the declarations, never to the JavaScript.
    assert.ok(files.includes(declarations), `tsc did not read ${declarations}:\n${files.join('\n')}`);
    assert.ok(!files.includes(path.join(root, 'src/web/client.js')), 'tsc read client.js instead of client.d.ts');
  });
}
