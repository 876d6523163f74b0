/**
 * The build lifecycle as its answers and events look (fleet/builds.ts holds the rules). Types and
 * constants only, importing nothing with a runtime: the CLI and the web console type-check against
 * these too (console/src/types.ts), so the API's answer and its readers cannot drift apart.
 */
import type { BuildState } from '../store/schema.ts';

export interface BuildPolicy {
  /** A build that has not called back after this long is marked failed and frees its slot. */
  readonly buildTimeoutMs: number;
  /** How often a waiting machine asks again. */
  readonly retrySeconds: number;
}

export const DEFAULT_BUILD_POLICY: BuildPolicy = { buildTimeoutMs: 3 * 3600_000, retrySeconds: 30 };

export type HostEventKind =
  | 'discovered'
  | 'dhcp'
  | 'tftp'
  | 'firmware'
  | 'script'
  | 'queued'
  | 'build-started'
  | 'kernel'
  | 'initrd'
  | 'kickstart'
  | 'built'
  | 'build-failed'
  | 'rebuild-requested'
  | 'adopted';

/** What a booting machine's answer depends on: the host behind one of its MACs (boot/backend.ts). */
export interface BootHost {
  readonly id: number;
  /** The MAC it was found by (for a lookup by UUID: its first MAC). */
  readonly mac: string;
  readonly hostname: string;
  /** Its reserved address, if any (dotted quad, as the store keeps it). */
  readonly ip: string | null;
  readonly networkId: number | null;
  readonly siteId: number | null;
  readonly profileId: number | null;
  readonly buildState: BuildState;
}

export type Admission =
  | { readonly admitted: true; readonly token: string }
  | { readonly admitted: false; readonly position: number; readonly cap: number };

/** One event of a host's boot timeline (GET /api/v1/hosts/NAME/timeline). */
export interface TimelineEntry {
  readonly at: string;
  readonly kind: string;
  readonly detail: Record<string, unknown>;
}

/** A site's admission state (GET /api/v1/sites/NAME/builds): who holds a build slot, who waits, in order. */
export interface SiteBuilds {
  readonly site: string;
  readonly cap: number;
  readonly building: { hostname: string; since: string }[];
  readonly queued: { hostname: string; position: number; since: string }[];
}

export type ProgressState = BuildState | 'queued';

/** One site's build progress (GET /api/v1/build-progress). */
export interface SiteProgress {
  readonly site: string;
  readonly cap: number;
  readonly hosts: number;
  /** `ready` counts machines not yet asking to install; `queued` those asking while the site is at its cap. */
  readonly counts: Record<ProgressState, number>;
}
