/**
 * Every long-lived part of the daemon is a service: constructing it does nothing (no file, socket,
 * timer or thread), `start()` acquires what it needs, `stop()` gives it all back. The daemon starts
 * its services in order and stops them in reverse (src/daemon/lifecycle.ts).
 */
export interface Service {
  /** the start step's name, in logs and in a failed start */
  readonly name: string;
  start(): void | Promise<void>;
  /** called once, only after start() succeeded; gives back everything start() acquired */
  stop(): void | Promise<void>;
}
