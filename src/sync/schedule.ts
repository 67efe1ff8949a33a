/**
 * The gateway's recurring jobs: run once now, then on a node-cron schedule in Japan's time zone,
 * never two runs of one job at once; a failure goes to `onError`, never throws.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { OnshiError } from '../core/errors.js';

export interface JobOptions {
  /** the task's name (node-cron) */
  name: string;
  /** the config key the schedule came from, for the error a bad expression gets */
  setting: string;
  schedule: string;
  run: () => Promise<unknown>;
  onError: (e: unknown) => void;
}

/** CONFIG_INVALID, naming the setting, when the schedule is not a cron expression. */
export function assertCronSchedule(setting: string, schedule: string): void {
  if (!cron.validate(schedule))
    throw new OnshiError('CONFIG_INVALID', `${setting} "${schedule}" is not a valid cron expression`);
}

/** Throws as assertCronSchedule does for a bad schedule. */
export function scheduleJob(o: JobOptions): ScheduledTask {
  assertCronSchedule(o.setting, o.schedule);
  const run = (): Promise<void> => o.run().then(() => undefined, o.onError);
  const task = cron.schedule(o.schedule, run, { timezone: 'Asia/Tokyo', name: o.name, noOverlap: true });
  void run();
  return task;
}
