/**
 * A structural check of Kickstart files, from the RHEL 8/9 Kickstart reference: every section
 * (%packages, %pre, %post, %pre-install, %onerror, %addon, %anaconda) is closed by %end, sections do
 * not nest, commands removed in RHEL 8/9 are absent, and required commands are present.
 */
export interface KickstartProblems {
  problems: string[];
  commands: Map<string, string[]>;
}

const SECTIONS = ['%packages', '%pre', '%post', '%pre-install', '%onerror', '%addon', '%anaconda', '%traceback'];
/** Removed from Kickstart in RHEL 8 or 9 (install/upgrade since 8, authconfig since 9, and older probing commands). */
const REMOVED_IN_8_9 = [
  'install',
  'upgrade',
  'authconfig',
  'device',
  'deviceprobe',
  'dmraid',
  'interactive',
  'key',
  'monitor',
  'multipath',
  'method',
];

export function checkKickstart(text: string, release: 6 | 8 | 9): KickstartProblems {
  const problems: string[] = [];
  const commands = new Map<string, string[]>();
  let open: string | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    const at = `line ${index + 1}`;
    if (line === '' || line.startsWith('#')) return;
    const word = line.split(/\s+/)[0]!;
    if (word.startsWith('%')) {
      if (word === '%end') {
        if (!open) problems.push(`${at}: %end with no open section`);
        open = undefined;
      } else if (SECTIONS.includes(word)) {
        if (open) problems.push(`${at}: ${word} opened inside ${open}`);
        open = word;
      } else if (word !== '%include' && word !== '%ksappend') problems.push(`${at}: unknown section ${word}`);
      return;
    }
    if (open) return;
    commands.set(word, [...(commands.get(word) ?? []), line]);
    if (release >= 8 && REMOVED_IN_8_9.includes(word))
      problems.push(`${at}: "${word}" is not a RHEL ${release} Kickstart command`);
  });
  if (open) problems.push(`section ${open} is never closed with %end`);
  for (const required of ['url', 'network', 'rootpw', 'bootloader', 'reboot'])
    if (!commands.has(required)) problems.push(`missing ${required}`);
  if (release >= 8 && !commands.has('authselect')) problems.push('RHEL 8/9 Kickstart should use authselect');
  if (!/^%packages\b/m.test(text)) problems.push('no %packages section');
  return { problems, commands };
}

/** --name=value options of a command line, e.g. the network line. */
export function optionsOf(line: string): Map<string, string> {
  const options = new Map<string, string>();
  for (const match of line.matchAll(/--([a-z-]+)(?:=(\S+))?/g)) options.set(match[1]!, match[2] ?? '');
  return options;
}
