/**
 * The boot HTTP role's request log as a summary: Fastify's own per-request lines are turned off
 * (`disableRequestLogging`) and this hook records each response instead — at debug the same
 * "request completed" line Fastify writes, with the request, at info one line of counts per
 * interval. The request and reply are handed to the app's logger as they are, so its serializers
 * (the boot role's redacting one, boot/log-redact.ts) decide what of them is written.
 */
import type { FastifyInstance } from 'fastify';
import { bootHttpKind } from './boot-kinds.ts';
import { BootSummary, type SummaryTimers } from './boot-summary.ts';

export interface BootHttpSummaryOptions {
  readonly intervalMs?: number;
  /** For tests. */
  readonly now?: () => number;
  readonly timers?: SummaryTimers;
}

/** Adds the onResponse and onClose hooks to `app` (before it is ready); the summary stops with the app. */
export function summarizeBootHttp(app: FastifyInstance, options: BootHttpSummaryOptions = {}): BootSummary {
  const summary = new BootSummary({
    label: 'boot http',
    noun: 'request',
    log: app.log,
    intervalMs: options.intervalMs,
    now: options.now,
    timers: options.timers,
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.is404 ? undefined : request.routeOptions.url;
    summary.record({
      kind: bootHttpKind(route, request.params as Record<string, unknown> | undefined),
      status: reply.statusCode,
      msg: 'request completed',
      fields: {
        reqId: request.id,
        req: request, // serialized by the logger: never a token (log-redact.ts)
        res: reply,
        responseTime: reply.elapsedTime,
      },
    });
  });
  app.addHook('onClose', async () => summary.stop());
  return summary;
}
