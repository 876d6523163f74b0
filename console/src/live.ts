/**
 * Live events: one server-sent-events stream (GET /api/v1/events) shared by every page. It is read
 * with fetch rather than EventSource, because EventSource cannot send the Authorization header
 * (and a token in the URL would end up in access logs). Reconnects after a pause when it drops.
 */
import { useEffect, useRef, useSyncExternalStore } from 'react';
import { authHeaders } from './api.ts';
import type { LiveEvent } from './types.ts';

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

type Handler = (event: LiveEvent) => void;

class LiveStream {
  #handlers = new Set<Handler>();
  #statusListeners = new Set<() => void>();
  #status: StreamStatus = 'stopped';
  #abort: AbortController | undefined;
  /** The last activity summary and when it came, for pages mounted after it. */
  lastActivity: { event: Extract<LiveEvent, { type: 'activity' }>; at: number } | undefined;

  get status(): StreamStatus {
    return this.#status;
  }

  start(): void {
    if (this.#abort) return;
    this.#abort = new AbortController();
    void this.#run(this.#abort.signal);
  }

  stop(): void {
    this.#abort?.abort();
    this.#abort = undefined;
    this.#setStatus('stopped');
  }

  subscribe(handler: Handler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  onStatus(listener: () => void): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  #setStatus(status: StreamStatus): void {
    this.#status = status;
    for (const listener of this.#statusListeners) listener();
  }

  async #run(signal: AbortSignal): Promise<void> {
    this.#setStatus('connecting');
    while (!signal.aborted) {
      try {
        const response = await fetch('/api/v1/events', {
          headers: { accept: 'text/event-stream', ...authHeaders() },
          signal,
        });
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        this.#setStatus('live');
        await this.#read(response.body, signal);
      } catch {
        /* dropped or refused: try again below */
      }
      if (signal.aborted) return;
      this.#setStatus('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  async #read(body: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      // Events end with a blank line; `data:` lines carry the JSON; lines starting ':' are keep-alives.
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (!data) continue;
        try {
          const event = JSON.parse(data) as LiveEvent;
          if (event.type === 'activity') this.lastActivity = { event, at: Date.now() };
          for (const handler of this.#handlers) handler(event);
        } catch {
          /* a malformed event is skipped */
        }
      }
    }
  }
}

export const liveStream = new LiveStream();

/** Calls `handler` for every live event while the component is mounted (the latest handler, without resubscribing). */
export function useLiveEvents(handler: Handler): void {
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => liveStream.subscribe((event) => latest.current(event)), []);
}

export function useStreamStatus(): StreamStatus {
  return useSyncExternalStore(
    (listener) => liveStream.onStatus(listener),
    () => liveStream.status,
  );
}
