/**
 * kvmfleet's power verbs in Redfish terms, on an open session:
 *   on → On, off → ForceOff, soft → GracefulShutdown, reset → ForceRestart, status → PowerState;
 *   cycle → PowerCycle where the system offers it, else ForceOff, wait for Off, On; a machine
 *   that is off is powered on (as over IPMI).
 * Every reset type a verb needs is checked against the system's AllowableValues before the first
 * POST, so an unsupported verb changes nothing. On when already On and ForceOff when already Off
 * are not sent (many services answer them with an error); `sent` is then null.
 */
import { RedfishError } from '../protocols/redfish/errors.ts';
import { RedfishSession } from '../protocols/redfish/client.ts';
import type { ComputerSystem, RedfishPowerState, ResetType } from '../protocols/redfish/resources.ts';

export type Verb = 'status' | 'on' | 'off' | 'soft' | 'cycle' | 'reset';

const SIMPLE: Record<Exclude<Verb, 'status' | 'cycle'>, ResetType> = {
  on: 'On',
  off: 'ForceOff',
  soft: 'GracefulShutdown',
  reset: 'ForceRestart',
};

export interface CycleTiming {
  /** How long a ForceOff may take to show Off before the On (default 30 s). */
  readonly offWithinMs?: number;
  readonly pollMs?: number;
}

/** Power is on in every state but Off (PoweringOff still draws it; as IPMI's "power is on" bit). */
export const powerOf = (state: RedfishPowerState): 'on' | 'off' => (state === 'Off' ? 'off' : 'on');

export async function redfishPower(
  session: RedfishSession,
  verb: Verb,
  timing: CycleTiming = {},
): Promise<{ powerState: 'on' | 'off'; sent: Exclude<Verb, 'status'> | null }> {
  const { system } = await session.system();
  if (verb === 'status') return { powerState: powerOf(system.powerState), sent: null };
  const sent = await act(session, system, verb, timing);
  return { powerState: powerOf(await session.powerState()), sent };
}

async function act(
  session: RedfishSession,
  system: ComputerSystem,
  verb: Exclude<Verb, 'status'>,
  timing: CycleTiming,
): Promise<Exclude<Verb, 'status'> | null> {
  const off = system.powerState === 'Off';
  if (verb === 'cycle') {
    if (off) {
      await session.reset(system, 'On');
      return 'on';
    }
    if (system.reset?.allowable?.includes('PowerCycle')) {
      await session.reset(system, 'PowerCycle');
      return 'cycle';
    }
    // Both halves are checked before the first is sent: never off with no way back on.
    RedfishSession.check(system, 'ForceOff');
    RedfishSession.check(system, 'On');
    await session.reset(system, 'ForceOff');
    await waitForOff(session, timing);
    await session.reset(system, 'On');
    return 'cycle';
  }
  if ((verb === 'on' && !off && system.powerState !== 'PoweringOff') || (verb === 'off' && off)) {
    RedfishSession.check(system, SIMPLE[verb]);
    return null;
  }
  await session.reset(system, SIMPLE[verb]);
  return verb;
}

async function waitForOff(session: RedfishSession, timing: CycleTiming): Promise<void> {
  const limit = timing.offWithinMs ?? 30_000;
  const deadline = Date.now() + limit;
  while ((await session.powerState()) !== 'Off') {
    if (Date.now() > deadline)
      throw new RedfishError('protocol', `the system did not show PowerState Off within ${limit} ms of ForceOff`);
    await new Promise((r) => setTimeout(r, timing.pollMs ?? 250));
  }
}

export async function redfishBootdev(
  session: RedfishSession,
  flags: { device: 'pxe' | 'disk'; persistent: boolean; uefi: boolean },
): Promise<void> {
  await session.setBootOverride({
    target: flags.device === 'pxe' ? 'Pxe' : 'Hdd',
    enabled: flags.persistent ? 'Continuous' : 'Once',
    mode: flags.uefi ? 'UEFI' : 'Legacy',
  });
}
