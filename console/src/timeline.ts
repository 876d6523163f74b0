/**
 * A host's boot timeline as the steps of one network install: DHCP → TFTP → iPXE script → kernel →
 * Kickstart → built. Pure functions over the host's events (GET /api/v1/hosts/NAME/timeline plus
 * live ones), so the page and its tests agree on what "reached" means.
 */
export interface TimelineEvent {
  readonly at: string;
  readonly kind: string;
}

export interface Step {
  readonly key: 'dhcp' | 'tftp' | 'script' | 'kernel' | 'kickstart' | 'built';
  readonly label: string;
  readonly kinds: readonly string[];
}

export const STEPS: readonly Step[] = [
  { key: 'dhcp', label: 'DHCP', kinds: ['dhcp'] },
  // The firmware's download of the boot loader: by TFTP (PXE), or over HTTP for UEFI HTTP boot ('firmware').
  { key: 'tftp', label: 'TFTP / HTTP', kinds: ['tftp', 'firmware'] },
  { key: 'script', label: 'iPXE script', kinds: ['build-started'] },
  { key: 'kernel', label: 'Kernel', kinds: ['kernel', 'initrd'] },
  { key: 'kickstart', label: 'Kickstart', kinds: ['kickstart'] },
  { key: 'built', label: 'Built', kinds: ['built'] },
];

/** Events after which the next install is a new attempt. */
const RESTARTS = new Set(['rebuild-requested', 'adopted', 'build-failed']);

/**
 * When each step was first reached in the current attempt. The firmware's DHCP and TFTP come
 * before the script that starts the build, so they are looked for between the end of the previous
 * attempt (or a finished build) and that script.
 */
export function stepTimes(events: readonly TimelineEvent[]): Map<Step['key'], string> {
  let start = 0;
  events.forEach((e, i) => {
    if (RESTARTS.has(e.kind)) start = i + 1;
  });
  const script = events.findIndex((e, i) => i >= start && e.kind === 'build-started');
  const until = script >= 0 ? script : events.length;
  let from = 0;
  events.forEach((e, i) => {
    if (i < until && (RESTARTS.has(e.kind) || e.kind === 'built')) from = i + 1;
  });
  const times = new Map<Step['key'], string>();
  for (const step of STEPS) {
    const firmware = step.key === 'dhcp' || step.key === 'tftp';
    const hit = events
      .slice(firmware ? from : start, firmware ? until : events.length)
      .find((e) => step.kinds.includes(e.kind));
    if (hit) times.set(step.key, hit.at);
  }
  return times;
}
