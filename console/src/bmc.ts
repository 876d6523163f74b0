/**
 * The host page's BMC settings: what the form holds and the body of PUT /api/v1/hosts/{name}/bmc it sends.
 * A password typed here goes to the API once and is never shown again (the API answers only `passwordSet`).
 */
import { api, enc } from './api.ts';

export const BMC_TYPES = ['ipmi', 'redfish'] as const;
export type BmcType = (typeof BMC_TYPES)[number];

/** The host's BMC as GET /api/v1/hosts/{name}/bmc answers it. */
export interface BmcView {
  readonly type: string;
  readonly address: string;
  readonly username: string | null;
  readonly credentials: string | null;
  readonly passwordSet: boolean;
  readonly insecure?: true;
  readonly caFile?: string;
}

export interface BmcFields {
  type: BmcType;
  address: string;
  username: string;
  /** Empty: keep the stored password. */
  password: string;
  /** A shared credentials set instead of the host's own password; empty: none. */
  credentials: string;
  /** Redfish only: do not check the BMC's certificate. */
  insecure: boolean;
}

export function fieldsFrom(view: BmcView | null): BmcFields {
  return {
    type: view?.type === 'redfish' ? 'redfish' : 'ipmi',
    address: view?.address ?? '',
    username: view?.username ?? '',
    password: '',
    credentials: view?.credentials ?? '',
    insecure: view?.insecure === true,
  };
}

/** Why the form cannot be sent yet, or undefined. */
export function fieldsProblem(fields: BmcFields): string | undefined {
  if (!fields.address.trim()) return 'an address is needed';
  if (fields.password && fields.credentials.trim()) return 'a password or a credentials set, not both';
  return undefined;
}

/** The PUT body: empty optional fields left out (an empty password keeps the stored one). */
export function bmcBody(fields: BmcFields): Record<string, unknown> {
  const body: Record<string, unknown> = { type: fields.type, address: fields.address.trim() };
  if (fields.username.trim()) body.username = fields.username.trim();
  if (fields.password) body.password = fields.password;
  body.credentials = fields.credentials.trim() || null;
  if (fields.type === 'redfish') body.insecure = fields.insecure;
  return body;
}

export function saveBmc(hostname: string, fields: BmcFields): Promise<BmcView> {
  return api<BmcView>('PUT', `/api/v1/hosts/${enc(hostname)}/bmc`, { json: bmcBody(fields) });
}
