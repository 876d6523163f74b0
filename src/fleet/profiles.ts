/** Profiles: what a host installs — OS, install tree, kernel/initrd, Kickstart template, packages. */
import type { Kysely, Selectable } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import { inventoryTransaction, type Db } from '../store/tx.ts';
import { checkNoControl, checkPackageNames, checkPasswordHash } from './kickstart-inputs.ts';
import { OS_FAMILIES, type OsFamily, type Profile, type ProfileInput } from './model.ts';
import { RE } from './validate-names.ts';

const NAME = RE.profileName;

/** Where RHEL-family install trees keep the PXE kernel and initrd. */
const DEFAULT_KERNEL = 'images/pxeboot/vmlinuz';
const DEFAULT_INITRD = 'images/pxeboot/initrd.img';

export function defaultKickstartTemplate(os: OsFamily): string {
  return os === 'rhel6' || os === 'rhel7' ? 'rhel6-kvm' : 'rhel-kvm';
}

function toProfile(row: Selectable<Database['profiles']>): Profile {
  return {
    name: row.name,
    os: row.os,
    arch: row.arch,
    installTreeUrl: row.install_tree_url,
    kernelPath: row.kernel_path,
    initrdPath: row.initrd_path,
    kickstartTemplate: row.kickstart_template,
    packages: row.packages,
    kernelArgs: row.kernel_args,
    hasRootPassword: row.root_password_hash !== '',
  };
}

export function checkProfileInput(input: ProfileInput): void {
  const bad = (message: string) => {
    throw new KvmfleetError(ErrorCode.Validation, message);
  };
  if (!NAME.test(input.name ?? ''))
    bad(`profile name "${input.name}" must be lower-case letters, digits, dots, underscores and hyphens`);
  if (!(OS_FAMILIES as readonly string[]).includes(input.os))
    bad(`profile os "${input.os}" is not one of ${OS_FAMILIES.join(', ')}`);
  // Everything below reaches a Kickstart or an iPXE script: no line breaks or other control characters.
  for (const field of [
    'installTreeUrl',
    'kernelPath',
    'initrdPath',
    'kernelArgs',
    'arch',
    'kickstartTemplate',
  ] as const)
    checkNoControl(field, input[field]);
  checkPackageNames(input.packages);
  checkPasswordHash(input.rootPasswordHash);
  let url: URL | undefined;
  try {
    url = new URL(input.installTreeUrl);
  } catch {
    bad(`installTreeUrl "${input.installTreeUrl}" is not a URL`);
  }
  if (url && url.protocol !== 'http:' && url.protocol !== 'https:')
    bad(`installTreeUrl must be http(s), not ${url.protocol}`);
  // The API's schema states the same rules (validate-names.ts); imports reach this check directly.
  if (!RE.httpUrl.test(input.installTreeUrl))
    bad(
      `installTreeUrl "${input.installTreeUrl}" must be http(s)://HOST[:PORT][/PATH] (an IPv4 address or a host name)`,
    );
  for (const path of [input.kernelPath, input.initrdPath])
    if (path !== undefined && !RE.relativePath.test(path)) bad(`"${path}" must be a path relative to the install tree`);
}

export async function listProfiles(db: Db): Promise<Profile[]> {
  return (await db.selectFrom('profiles').selectAll().orderBy('name').execute()).map(toProfile);
}

export async function getProfile(db: Db, name: string): Promise<Profile> {
  const row = await db.selectFrom('profiles').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw new KvmfleetError(ErrorCode.NotFound, `profile "${name}" does not exist`);
  return toProfile(row);
}

export async function putProfile(trx: Db, input: ProfileInput, mode: 'create' | 'upsert'): Promise<Profile> {
  checkProfileInput(input);
  const os = input.os as OsFamily;
  const values = {
    name: input.name,
    os,
    arch: input.arch ?? 'x86_64',
    install_tree_url: input.installTreeUrl.replace(/\/+$/, ''),
    kernel_path: input.kernelPath ?? DEFAULT_KERNEL,
    initrd_path: input.initrdPath ?? DEFAULT_INITRD,
    kickstart_template: input.kickstartTemplate ?? defaultKickstartTemplate(os),
    packages: JSON.stringify(input.packages ?? []),
    kernel_args: input.kernelArgs ?? '',
    root_password_hash: input.rootPasswordHash ?? '',
  };
  const existing = await trx.selectFrom('profiles').select('id').where('name', '=', input.name).executeTakeFirst();
  if (existing && mode === 'create')
    throw new KvmfleetError(ErrorCode.AlreadyExists, `profile "${input.name}" already exists`);
  const row = existing
    ? await trx
        .updateTable('profiles')
        .set(values)
        .where('id', '=', existing.id)
        .returningAll()
        .executeTakeFirstOrThrow()
    : await trx.insertInto('profiles').values(values).returningAll().executeTakeFirstOrThrow();
  return toProfile(row);
}

export function createProfile(db: Kysely<Database>, input: ProfileInput): Promise<Profile> {
  return inventoryTransaction(db, (trx) => putProfile(trx, input, 'create'));
}

export function deleteProfile(db: Kysely<Database>, name: string): Promise<void> {
  return inventoryTransaction(db, async (trx) => {
    const row = await trx.selectFrom('profiles').select('id').where('name', '=', name).executeTakeFirst();
    if (!row) throw new KvmfleetError(ErrorCode.NotFound, `profile "${name}" does not exist`);
    const { count } = await trx
      .selectFrom('hosts')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('profile_id', '=', row.id)
      .executeTakeFirstOrThrow();
    if (Number(count) > 0) throw new KvmfleetError(ErrorCode.InUse, `profile "${name}" is used by ${count} host(s)`);
    await trx.deleteFrom('profiles').where('id', '=', row.id).execute();
  });
}
