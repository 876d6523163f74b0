/**
 * Adopting a discovered machine: an unknown MAC that network-booted was registered as
 * `discovered-<mac>` and waits in iPXE; adopting names it, gives it a network, an address and a
 * profile, and makes it `ready`, so its next retry starts an install.
 *
 * The row is renamed in place (not replaced) so its boot timeline — the discovery, every DHCP and
 * script request while it waited — stays with the machine. Checks are the same as for any new host
 * (hosts.ts → validate-host.ts), run in one inventory transaction: all or nothing.
 */
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { Bmc, Database } from '../store/schema.ts';
import { inventoryTransaction } from '../store/tx.ts';
import { recordEvent, setState } from './builds.ts';
import { applyHosts, getHost } from './hosts.ts';
import type { Host } from './model.ts';
import { normalizeHostname } from './validate-host.ts';

export interface AdoptInput {
  readonly hostname: string;
  readonly profile: string;
  /** Defaults to the network the machine was discovered on (known when it came through DHCP). */
  readonly network?: string | undefined;
  readonly ip?: string | null | undefined;
  readonly smbiosUuid?: string | null | undefined;
  readonly bmc?: Bmc | null | undefined;
}

export async function adoptHost(
  db: Kysely<Database>,
  discoveredName: string,
  input: AdoptInput,
  actor: string,
): Promise<Host> {
  return inventoryTransaction(db, async (trx) => {
    const from = normalizeHostname(discoveredName);
    const found = await trx
      .selectFrom('hosts')
      .leftJoin('networks', 'networks.id', 'hosts.network_id')
      .select(['hosts.id', 'hosts.build_state', 'networks.name as network'])
      .where('hosts.hostname', '=', from)
      .forUpdate('hosts')
      .executeTakeFirst();
    if (!found) throw new KvmfleetError(ErrorCode.NotFound, `host "${discoveredName}" does not exist`);
    if (found.build_state !== 'discovered')
      throw new KvmfleetError(
        ErrorCode.InUse,
        `host "${from}" is ${found.build_state}, not discovered: only discovered machines are adopted`,
      );
    const network = input.network ?? found.network;
    if (!network)
      throw new KvmfleetError(
        ErrorCode.Validation,
        `host "${from}" was not seen on a known network: name the network to adopt it into`,
      );
    const hostname = normalizeHostname(input.hostname);
    if (
      hostname !== from &&
      (await trx.selectFrom('hosts').select('id').where('hostname', '=', hostname).executeTakeFirst())
    ) {
      throw new KvmfleetError(ErrorCode.DuplicateHostname, `hostname "${hostname}" already exists`);
    }
    const macs = (
      await trx.selectFrom('host_macs').select('mac').where('host_id', '=', found.id).orderBy('position').execute()
    ).map((r) => r.mac);

    // Rename first, then update it as an existing host: its MACs are then its own, not a conflict.
    await trx.updateTable('hosts').set({ hostname }).where('id', '=', found.id).execute();
    const { errors } = await applyHosts(
      trx,
      [
        {
          hostname,
          macs,
          network,
          profile: input.profile,
          ip: input.ip ?? null,
          smbiosUuid: input.smbiosUuid ?? null,
          bmc: input.bmc ?? null,
        },
      ],
      { mode: 'upsert' },
    );
    const problems = errors[0]?.problems;
    if (problems && problems.length > 0) throw new KvmfleetError(problems[0]!.code, problems[0]!.message, { problems });

    await setState(trx, found.id, 'ready', { build_token: null, queued_at: null, queue_seen_at: null });
    await recordEvent(trx, found.id, 'adopted', { from, by: actor });
    return getHost(trx, hostname);
  });
}
