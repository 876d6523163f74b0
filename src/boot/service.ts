/**
 * What the boot HTTP role does for a machine, independent of HTTP: its iPXE script (running
 * admission control), its Kickstart (only with the current build token), the build callback,
 * and side-effect-free previews for operators.
 */
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { getHost } from '../fleet/hosts.ts';
import { hasControlCharacter } from '../fleet/kickstart-inputs.ts';
import type { Host, Profile } from '../fleet/model.ts';
import { getNetwork } from '../fleet/networks.ts';
import { getProfile } from '../fleet/profiles.ts';
import { getSite } from '../fleet/sites.ts';
import type { Database } from '../store/schema.ts';
import {
  admit,
  isFromMachine,
  markBuilt,
  registerDiscovered,
  type BuildPolicy,
  type TokenBuild,
  DEFAULT_BUILD_POLICY,
} from '../fleet/builds.ts';
import { TimelineWriter } from '../fleet/timeline-writer.ts';
import { decideBoot, type BootDecision, type InstallPlan, type Platform } from './decide.ts';
import { renderIpxeScript } from './ipxe-script.ts';
import { KickstartTemplates, kickstartContext } from './kickstart.ts';
import { bootUrls } from './urls.ts';
import type { HostCache } from './host-cache.ts';
// What counts as the store being away (and so answered from the cache) is the store's own rule.
import { isStoreUnavailable } from '../store/unavailable.ts';
import { StoreBootBackend, type BootBackend } from './backend.ts';
import type { DiscoveryLimiter } from './rate-limit.ts';
import { TokenBatcher } from './token-batch.ts';

export const PREVIEW_TOKEN = 'PREVIEW-TOKEN-NOT-VALID';

export interface BootServiceOptions {
  readonly db: Kysely<Database>;
  readonly templates: KickstartTemplates;
  readonly policy?: BuildPolicy;
  /** Where machines are looked up; default: the store behind `db`. */
  readonly backend?: BootBackend;
  /** Answers scripts from what it remembers when the store does not answer (boot HTTP role). */
  readonly cache?: HostCache;
  /** Bounds what unknown MACs can record (discovered hosts, their script events); shared with the DHCP role. */
  readonly discovery?: DiscoveryLimiter;
  /**
   * Group commit of the boot events (script, kickstart, kernel, initrd); shared with the other
   * roles of the process and drained by whoever made it. Default: one of the service's own.
   */
  readonly timeline?: TimelineWriter;
  /** Batched build-token checks; default: the service's own, on `db`. */
  readonly tokens?: TokenBatcher;
}

/** What a profile contributes to a machine's install command line. */
type InstallProfile = Pick<Profile, 'name' | 'os' | 'installTreeUrl' | 'kernelArgs'>;

export class BootService {
  readonly #db: Kysely<Database>;
  readonly #templates: KickstartTemplates;
  readonly policy: BuildPolicy;
  readonly backend: BootBackend;
  readonly cache: HostCache | undefined;
  readonly #discovery: DiscoveryLimiter | undefined;
  readonly timeline: TimelineWriter;
  /** Build-token checks of concurrent requests, one query per batch. */
  readonly tokens: TokenBatcher;
  /** Kickstarts rendered for a batch's build, by base URL: requests sharing a token and a batch share the text. */
  readonly #rendered = new WeakMap<TokenBuild, Map<string, string>>();

  constructor(options: BootServiceOptions) {
    this.#db = options.db;
    this.#templates = options.templates;
    this.policy = options.policy ?? DEFAULT_BUILD_POLICY;
    this.backend = options.backend ?? new StoreBootBackend(options.db);
    this.cache = options.cache;
    this.#discovery = options.discovery;
    this.timeline = options.timeline ?? new TimelineWriter(options.db);
    this.tokens = options.tokens ?? new TokenBatcher(options.db);
  }

  /**
   * The iPXE script for the machine with this MAC; registers unknown machines and runs admission.
   * If the store does not answer, the cache decides: a built host boots its disk, others wait.
   */
  async script(
    mac: string,
    request: { clientIp?: string | undefined; platform?: Platform | undefined; baseUrl: string },
  ): Promise<{ script: string; decision: BootDecision }> {
    try {
      return await this.#script(mac, request);
    } catch (error) {
      if (!this.cache || !isStoreUnavailable(error)) throw error;
      this.cache.noteStoreError(error);
      this.cache.stats.answeredFromCache += 1;
      const known = await this.cache.hostByMac(mac);
      const decision: BootDecision =
        known?.buildState === 'built'
          ? { action: 'local', hostname: known.hostname, platform: request.platform }
          : {
              action: 'wait',
              reason: 'store-unreachable',
              message: `kvmfleet cannot reach its store; ${known ? known.hostname : 'this machine'} will be answered when it is back`,
              retrySeconds: this.policy.retrySeconds,
            };
      return { script: renderIpxeScript(decision, bootUrls(request.baseUrl).script()), decision };
    }
  }

  async #script(
    mac: string,
    request: { clientIp?: string | undefined; platform?: Platform | undefined; baseUrl: string },
  ): Promise<{ script: string; decision: BootDecision }> {
    let host = await this.backend.hostByMac(mac);
    if (!host) {
      // Past the discovery limit an unknown MAC waits like any discovered one, without a row.
      if (this.#discovery && !this.#discovery.newHost()) {
        const decision = decideBoot({
          host: undefined,
          platform: request.platform,
          retrySeconds: this.policy.retrySeconds,
        });
        return { script: renderIpxeScript(decision, bootUrls(request.baseUrl).script()), decision };
      }
      host = await registerDiscovered(this.#db, mac, request.clientIp, 'http');
    }
    let install: InstallPlan | undefined;
    let queuePosition: number | undefined;
    // Knowing a MAC is not enough: only a request from the host's own address starts its build or
    // gets a token; anything else waits and changes nothing (no admission, no token rotation).
    const fromMachine = await isFromMachine(this.#db, host.id, request.clientIp);
    if ((host.buildState === 'ready' || host.buildState === 'building') && host.profileId !== null && fromMachine) {
      const admission = await admit(this.#db, host, this.policy);
      if (admission.admitted)
        install = this.#installPlan(await this.#profileById(host.profileId), mac, admission.token, request.baseUrl);
      else queuePosition = admission.position;
      host = { ...host, buildState: admission.admitted ? 'building' : host.buildState };
    }
    const decision = decideBoot({
      host: {
        hostname: host.hostname,
        buildState: host.buildState,
        hasProfile: host.profileId !== null,
        install,
        queuePosition,
        fromMachine,
      },
      platform: request.platform,
      retrySeconds: this.policy.retrySeconds,
    });
    if (host.buildState !== 'discovered' || !this.#discovery || this.#discovery.event(mac))
      await this.timeline.record(host.id, 'script', {
        action: decision.action,
        ...(decision.action === 'wait' ? { reason: decision.reason } : {}),
        ip: request.clientIp ?? null,
      });
    return { script: renderIpxeScript(decision, bootUrls(request.baseUrl).script()), decision };
  }

  /** The profile columns an install plan needs, in one query (the profile exists: hosts.profile_id references it). */
  async #profileById(id: number): Promise<InstallProfile> {
    const row = await this.#db
      .selectFrom('profiles')
      .select(['name', 'os', 'install_tree_url', 'kernel_args'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return { name: row.name, os: row.os, installTreeUrl: row.install_tree_url, kernelArgs: row.kernel_args };
  }

  #installPlan(profile: InstallProfile, mac: string, token: string, baseUrl: string): InstallPlan {
    const urls = bootUrls(baseUrl);
    const legacy = profile.os === 'rhel6';
    const bootif = `BOOTIF=01-${mac.toLowerCase().replace(/[:]/g, '-')}`;
    // RHEL 7+ reads inst.ks/inst.repo; RHEL 6 reads ks/repo and needs the NIC named.
    const args = legacy
      ? [`ks=${urls.kickstart(token)}`, `repo=${profile.installTreeUrl}`, 'ksdevice=bootif', bootif]
      : [`inst.ks=${urls.kickstart(token)}`, `inst.repo=${profile.installTreeUrl}`, 'ip=dhcp', bootif];
    if (profile.kernelArgs) args.push(profile.kernelArgs);
    // One line of the iPXE script: a line break in a stored value would add commands of its own.
    if (args.some(hasControlCharacter))
      throw new KvmfleetError(
        ErrorCode.ControlCharacter,
        `profile ${profile.name}: its install tree URL or kernel arguments contain a control character: refused`,
      );
    return { kernelUrl: urls.kernel(token), initrdUrl: urls.initrd(token), kernelArgs: args.join(' ') };
  }

  /**
   * The Kickstart for the build this token belongs to, or undefined when the token is not current.
   * It is answered only once its `kickstart` event is committed (a crash loses no served event).
   */
  async kickstart(token: string, baseUrl: string, clientIp?: string): Promise<string | undefined> {
    const build = await this.tokens.lookup(token);
    if (!build) return undefined;
    let texts = this.#rendered.get(build);
    if (!texts) this.#rendered.set(build, (texts = new Map()));
    let text = texts.get(baseUrl);
    if (text === undefined) {
      text = this.#renderBuild(build, token, baseUrl);
      texts.set(baseUrl, text);
    }
    await this.timeline.record(build.hostId, 'kickstart', { ip: clientIp ?? null });
    return text;
  }

  #renderBuild(build: TokenBuild, token: string, baseUrl: string): string {
    if (!build.profile || !build.network)
      throw new KvmfleetError(
        ErrorCode.Validation,
        `host "${build.hostname}" needs a profile and a network to have a Kickstart`,
      );
    const urls = bootUrls(baseUrl);
    const context = kickstartContext({
      host: build,
      network: build.network,
      site: { name: build.network.site },
      profile: build.profile,
      rootPasswordHash: build.profile.rootPasswordHash,
      urls: { built: urls.built(token), kickstart: urls.kickstart(token) },
    });
    return this.#templates.render(build.profile.kickstartTemplate, context);
  }

  /** Renders a host's Kickstart with the given token in its URLs (a placeholder for previews). */
  async renderKickstart(hostname: string, token: string, baseUrl: string): Promise<string> {
    const host: Host = await getHost(this.#db, hostname);
    if (!host.profile || !host.network)
      throw new KvmfleetError(
        ErrorCode.Validation,
        `host "${hostname}" needs a profile and a network to have a Kickstart`,
      );
    const [profile, network] = [await getProfile(this.#db, host.profile), await getNetwork(this.#db, host.network)];
    const site = await getSite(this.#db, network.site);
    const secret = await this.#db
      .selectFrom('profiles')
      .select('root_password_hash')
      .where('name', '=', profile.name)
      .executeTakeFirstOrThrow();
    const urls = bootUrls(baseUrl);
    const context = kickstartContext({
      host,
      network,
      site,
      profile,
      rootPasswordHash: secret.root_password_hash,
      urls: { built: urls.built(token), kickstart: urls.kickstart(token) },
    });
    return this.#templates.render(profile.kickstartTemplate, context);
  }

  /** Where the kernel or initrd of this build lives; records (and commits) that the machine fetched it. */
  async bootFile(token: string, which: 'kernel' | 'initrd'): Promise<string | undefined> {
    const build = await this.tokens.lookup(token);
    if (!build) return undefined;
    const profile = build.profile;
    if (!profile)
      throw new KvmfleetError(ErrorCode.Validation, `host "${build.hostname}" is building without a profile`);
    await this.timeline.record(build.hostId, which, {});
    return `${profile.installTreeUrl}/${which === 'kernel' ? profile.kernelPath : profile.initrdPath}`;
  }

  async built(token: string, clientIp?: string): Promise<string | undefined> {
    const hostname = await markBuilt(this.#db, token, clientIp);
    if (hostname) void this.cache?.refresh().catch(() => undefined); // so an outage right after still sends it to its disk
    return hostname;
  }

  /** What the host would get now, without admitting it, issuing a token or recording anything. */
  async preview(
    hostname: string,
    baseUrl: string,
    platform: Platform | undefined,
  ): Promise<{ decision: BootDecision; script: string }> {
    const host = await getHost(this.#db, hostname);
    const canInstall = (host.buildState === 'ready' || host.buildState === 'building') && host.profile !== null;
    const install = canInstall
      ? this.#installPlan(
          await getProfile(this.#db, host.profile!),
          host.macs[0] ?? '00:00:00:00:00:00',
          PREVIEW_TOKEN,
          baseUrl,
        )
      : undefined;
    const decision = decideBoot({
      host: { hostname: host.hostname, buildState: host.buildState, hasProfile: host.profile !== null, install },
      platform,
      retrySeconds: this.policy.retrySeconds,
    });
    return { decision, script: renderIpxeScript(decision, bootUrls(baseUrl).script()) };
  }
}
