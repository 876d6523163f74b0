/**
 * Power on the console: the host's last polled reading (the API host answer's `power`) as a short
 * label, and the power actions an operator may send from the host page, each confirmed first.
 */
import { api, enc } from './api.ts';
import type { HostPower } from '../../src/fleet/model.ts';

export type { HostPower };

/** What the hosts table shows: on, off, unknown (the BMC did not answer: its code in the title), or — never read. */
export function powerLabel(power: HostPower | undefined): { text: string; title: string } {
  if (!power) return { text: '—', title: 'not read yet (no BMC, or not polled yet)' };
  const when = `read ${new Date(power.checkedAt).toLocaleString()}`;
  return { text: power.state, title: power.error ? `${power.error}, ${when}` : when };
}

export const POWER_BUTTONS = [
  { action: 'on', label: 'Power on', danger: false },
  { action: 'off', label: 'Power off', danger: true },
  { action: 'cycle', label: 'Power cycle', danger: true },
] as const;
export type PowerButtonAction = (typeof POWER_BUTTONS)[number]['action'];

/** The question asked before an action is sent: off and cycle cut the machine's power without a shutdown. */
export function confirmText(hostname: string, action: PowerButtonAction): string {
  if (action === 'on') return `Power on ${hostname}?`;
  return `${action === 'off' ? 'Power off' : 'Power cycle'} ${hostname} now? Its power is cut without a shutdown.`;
}

/** Sends the action after the operator confirmed it; false when they did not. */
export async function sendPower(
  hostname: string,
  action: PowerButtonAction,
  confirm: (question: string) => boolean = (q) => window.confirm(q),
): Promise<{ powerState: string } | false> {
  if (!confirm(confirmText(hostname, action))) return false;
  return api<{ powerState: string }>('POST', `/api/v1/hosts/${enc(hostname)}/power`, { json: { action } });
}
