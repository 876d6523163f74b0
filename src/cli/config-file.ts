/**
 * The `kvmfleet serve` configuration file (YAML): one key per setting, named as its flag without the dashes
 * (`data-dir: /srv/kvmfleet`), checked with the same parsers as the flags. A key that is no setting, a value of the
 * wrong type, a duplicate key or a YAML error is refused with the file's name and the line, so an operator can fix it.
 * Precedence (serve-command.ts): flags > environment > this file > defaults.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { flagOf, SETTING_NAMES, settingOf, type SettingName, type SettingValue } from './serve-options.ts';

/** Where serve looks when neither --config nor KVMFLEET_CONFIG names a file; used only when it exists. */
export const DEFAULT_CONFIG_PATH = '/etc/kvmfleet/kvmfleet.yaml';
/** A configuration file is a page of settings; anything this big is not one. */
const MAX_BYTES = 1 << 20;

export class ConfigFileError extends Error {
  readonly code = 'KVMF_ERR_CONFIG_FILE';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    problem: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${problem}`);
  }
}

export interface ConfigFile {
  readonly path: string;
  readonly values: Partial<Record<SettingName, SettingValue>>;
  /** The line each setting is on, for messages about a value that is fine alone but not with others. */
  readonly lines: Partial<Record<SettingName, number>>;
}

/**
 * The file to read: the one named (it must exist), else the default path if it exists, else none.
 * `exists` is a parameter so that the choice can be tested without /etc.
 */
export function locateConfigFile(
  named: string | undefined,
  exists: (path: string) => boolean,
  defaultPath = DEFAULT_CONFIG_PATH,
): { path: string; named: boolean } | undefined {
  if (named !== undefined && named !== '') return { path: named, named: true };
  return exists(defaultPath) ? { path: defaultPath, named: false } : undefined;
}

/** Reads a file of at most MAX_BYTES; a missing file is a ConfigFileError that says so. */
export function readConfigText(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigFileError(path, undefined, code === 'ENOENT' ? 'no such file' : `cannot open (${code ?? error})`);
  }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_BYTES)
      throw new ConfigFileError(path, undefined, `${size} bytes; a configuration file is at most 1 MiB`);
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const KEYS = new Map(SETTING_NAMES.map((name) => [flagOf(name), name]));

/** Settings from a configuration file's text (`path` only names it in messages). */
export function parseConfigFile(path: string, text: string): ConfigFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (node: Node | null | undefined) => (node?.range ? lineCounter.linePos(node.range[0]).line : undefined);
  const [error] = doc.errors;
  if (error) throw new ConfigFileError(path, lineCounter.linePos(error.pos[0]).line, error.message.split('\n')[0]!);
  const values: Partial<Record<SettingName, SettingValue>> = {};
  const lines: Partial<Record<SettingName, number>> = {};
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return { path, values, lines };
  if (!isMap(doc.contents))
    throw new ConfigFileError(path, lineOf(doc.contents), 'wants settings, one "key: value" per line');
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as Node | null;
    const line = lineOf(keyNode);
    const key = isScalar(keyNode) ? keyNode.value : undefined;
    if (typeof key !== 'string') throw new ConfigFileError(path, line, 'a key is not a name');
    const name = KEYS.get(key);
    if (!name) throw new ConfigFileError(path, line, `unknown setting "${key}"${suggestion(key)}`);
    values[name] = valueOf(path, name, pair.value as Node | null, lineOf(pair.value as Node | null) ?? line);
    lines[name] = line!;
  }
  return { path, values, lines };
}

export function readConfigFile(path: string): ConfigFile {
  return parseConfigFile(path, readConfigText(path));
}

/** A node as the setting's value, through the setting's own parser; what does not fit says what it wanted. */
function valueOf(path: string, name: SettingName, node: Node | null, line: number | undefined): SettingValue {
  const setting = settingOf(name);
  const key = flagOf(name);
  const fail = (problem: string) => new ConfigFileError(path, line, `${key}: ${problem}`);
  if (!setting.parse) {
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    throw fail('wants true or false');
  }
  let text: string;
  if (setting.list && isSeq(node)) {
    const items = node.items.map((item) => (isScalar(item) ? item.value : undefined));
    if (!items.every((item) => typeof item === 'string' || typeof item === 'number'))
      throw fail('wants a list of plain values');
    text = items.join(',');
  } else if (isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number')) {
    text = String(node.value);
  } else {
    throw fail(`wants a ${setting.list ? 'value or a list' : 'value'}, not ${describe(node)}`);
  }
  if (setting.choices && !setting.choices.includes(text))
    throw fail(`"${text}" is not one of ${setting.choices.join(', ')}`);
  try {
    return setting.parse(text);
  } catch (error) {
    throw fail((error as Error).message);
  }
}

function describe(node: Node | null): string {
  if (node === null || (isScalar(node) && node.value === null)) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  return isScalar(node) ? `${typeof node.value} ${JSON.stringify(node.value)}` : 'that';
}

/** "did you mean" for a key a few edits from a setting (a typo, "retry-secs"), else nothing. */
function suggestion(key: string): string {
  const most = key.length >= 8 ? 3 : 2;
  let best: [string, number] | undefined;
  for (const candidate of KEYS.keys()) {
    const d = distance(key, candidate);
    if (d <= most && (!best || d < best[1])) best = [candidate, d];
  }
  return best ? ` (did you mean "${best[0]}"?)` : '';
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3 || a.length > 64) return 4;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
}
