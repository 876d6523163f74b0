/**
 * The layers of src/ (README, "Layout"): a module imports only from its own layer or below, so each capability
 * can be read, tested and replaced without what sits above it. Also: the README's layout lists exactly the
 * folders that exist.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(import.meta.dirname, '..');
const src = join(root, 'src');

/** Lowest first. A path is matched by its first segment under src/ (a folder, or a file at the top). */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'metrics.ts', 'version.ts', 'process-guard.ts', 'semaphore.ts', 'logging'],
  ['protocols'],
  ['store'],
  ['fleet', 'auth', 'bmc', 'import'],
  ['boot', 'vms', 'cluster'],
  ['api'],
  ['cli', 'serve.ts'],
];

function layerOf(file: string): number {
  const first = relative(src, file).split('/')[0] ?? '';
  const index = LAYERS.findIndex((layer) => layer.includes(first));
  if (index < 0) throw new Error(`src/${first} is in no layer: add it to LAYERS here and to the README's Layout`);
  return index;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(name) ? [path] : [];
  });
}

/** Relative specifiers of static imports, re-exports and dynamic imports (comments are not code). */
function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  for (const match of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)) {
    if (match[1]?.startsWith('.')) found.push(match[1]);
  }
  return found;
}

test('the import scanner sees static, type-only, re-export and dynamic imports, not comments', () => {
  const text = [
    "import { a } from './a.ts';",
    "import type { B } from '../b.ts';",
    "export { c } from './c.ts';",
    "const d = await import('./d.ts');",
    "import './e.ts';",
    "// import { f } from './f.ts';",
    "/* import { g } from './g.ts'; */",
    "import { h } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(importsOf(text), ['./a.ts', '../b.ts', './c.ts', './d.ts', './e.ts']);
});

test('no module under src/ imports from a layer above its own', () => {
  const upward: string[] = [];
  for (const file of sourceFiles(src)) {
    const own = layerOf(file);
    for (const specifier of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), specifier);
      if (!target.startsWith(src + '/')) {
        upward.push(`${relative(root, file)} imports ${specifier}, outside src/`);
        continue;
      }
      if (layerOf(target) > own) upward.push(`${relative(root, file)} → ${relative(root, target)}`);
    }
  }
  assert.deepEqual(upward, [], `imports that run upward:\n${upward.join('\n')}`);
});

test("the README's Layout names every folder of src/ and no folder that is gone", () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = /^## Layout\n([\s\S]*?)(?=^## |$(?![\s\S]))/m.exec(readme)?.[1];
  assert.ok(section, 'README.md has a "## Layout" section');
  const listed = new Set([...section.matchAll(/^(src\/[\w-]+\/?|[\w-]+\/)\s/gm)].map((m) => m[1]!.replace(/\/$/, '')));
  const folders = readdirSync(src).filter((name) => statSync(join(src, name)).isDirectory());
  for (const folder of folders) assert.ok(listed.has(`src/${folder}`), `README Layout lacks src/${folder}/`);
  for (const entry of listed) {
    let exists = false;
    try {
      exists = statSync(join(root, entry)).isDirectory();
    } catch {
      exists = false;
    }
    assert.ok(exists, `README Layout lists ${entry}/, which does not exist`);
  }
  for (const [index, layer] of LAYERS.entries()) {
    for (const name of layer.filter((n) => !n.endsWith('.ts'))) {
      if (folders.includes(name)) continue;
      assert.fail(`LAYERS (layer ${index}) names src/${name}, which does not exist`);
    }
  }
});
