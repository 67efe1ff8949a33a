/**
 * The daemon's lifecycle: services start one after the other, each after those it uses, and stop in
 * the reverse order. If a start step fails, everything started before it is stopped and the step's
 * own error is rethrown, so a refused start leaves no thread, timer, socket or open file behind.
 */
import { codeOf, OnshiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Service } from '../core/service.js';

export type LifecycleErrorCode = 'START_FAULT_INJECTED';

export interface LifecycleOptions {
  logger: Logger;
  /** tests only: fail right after the step of this name has started (see test/integration/daemon-failed-start) */
  failAt?: string;
}

/** A start step that makes a part: `value` is what `open` made, once the step has started. */
export type Part<T> = Service & { readonly value: T };

/** A part made when its step starts: `open` creates and starts it, `close` gives it back. */
export function part<T>(name: string, open: () => T | Promise<T>, close: (value: T) => void | Promise<void>): Part<T> {
  let value: T | undefined;
  let opened = false;
  return {
    name,
    get value(): T {
      if (!opened) throw new OnshiError('INTERNAL', `${name} is used before it started`);
      return value as T;
    },
    async start() {
      value = await open();
      opened = true;
    },
    async stop() {
      if (opened) await close(value as T);
    },
  };
}

export class Lifecycle {
  private readonly started: Service[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly o: LifecycleOptions) {}

  /** The names of the started steps, in start order. */
  get steps(): string[] {
    return this.started.map((s) => s.name);
  }

  /**
   * Runs `compose` (which starts the services through `start`/`use`); if anything in it throws,
   * stops what had started, in reverse, and rethrows the original error.
   */
  async boot<T>(compose: () => Promise<T>): Promise<T> {
    try {
      return await compose();
    } catch (e) {
      this.o.logger.error('start failed: stopping what had started', {
        event: 'start_failed',
        code: codeOf(e),
        error: (e as Error)?.message,
        started: this.steps,
      });
      await this.stop();
      throw e;
    }
  }

  async start<S extends Service>(service: S): Promise<S> {
    if (this.stopping) throw new OnshiError('INTERNAL', `${service.name} started while the daemon stops`);
    await service.start();
    this.started.push(service);
    if (this.o.failAt === service.name)
      throw new OnshiError<LifecycleErrorCode>('START_FAULT_INJECTED', `injected failure after ${service.name}`);
    return service;
  }

  /** Starts a part (see `part`) and gives back what it made. */
  async use<T>(p: Part<T>): Promise<T> {
    return (await this.start(p)).value;
  }

  /** Stops every started service in reverse order; one failing to stop is logged and the rest still stop. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const s of this.started.reverse()) {
        try {
          await s.stop();
        } catch (e) {
          this.o.logger.error(`${s.name} did not stop cleanly`, {
            event: 'stop_failed',
            service: s.name,
            code: codeOf(e),
            error: (e as Error)?.message,
          });
        }
      }
      this.started.length = 0;
    })();
    return this.stopping;
  }
}
