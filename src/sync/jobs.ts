/**
 * The gateway's scheduled jobs, all in one service: each on a node-cron schedule in Japan's time
 * zone, some also once at start. The schedules are checked when the service is constructed (before
 * the daemon opens anything); a run that is still going when its next turn comes is skipped, never
 * doubled; every failure is reported the same way (one `job_failed` log event and the job's
 * lastResult); each job's next run and last result are in the daemon's status.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { codeOf, OnshiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Service } from '../core/service.js';

const TIMEZONE = 'Asia/Tokyo';

export interface JobSchedule {
  /** the job's name, in the status and the logs */
  name: string;
  /** the config key the schedule came from, for the error a bad expression gets */
  setting: string;
  /** a node-cron expression (Asia/Tokyo) */
  schedule: string;
  /** run once when the service starts, too */
  atStart?: boolean;
}

/** What the status shows of a job's last run. */
export interface JobResult {
  at: string;
  ok: boolean;
  /** the error's code (OnshiError), when it failed */
  code?: string;
  durationMs: number;
}

export interface JobStatus {
  name: string;
  schedule: string;
  running: boolean;
  nextRunAt?: string;
  lastResult?: JobResult;
}

/** CONFIG_INVALID, naming the setting, when the schedule is not a cron expression. */
export function assertCronSchedule(setting: string, schedule: string): void {
  if (!cron.validate(schedule))
    throw new OnshiError('CONFIG_INVALID', `${setting} "${schedule}" is not a valid cron expression`);
}

interface Job extends JobSchedule {
  run?: () => Promise<unknown>;
  task?: ScheduledTask;
  running?: Promise<void>;
  lastResult?: JobResult;
}

export class JobsService implements Service {
  readonly name = 'jobs';
  private readonly jobs = new Map<string, Job>();
  private started = false;

  /** Throws CONFIG_INVALID for a bad schedule; schedules nothing yet. */
  constructor(
    schedules: readonly JobSchedule[],
    private readonly o: { logger: Logger; now?: () => number },
  ) {
    for (const s of schedules) {
      assertCronSchedule(s.setting, s.schedule);
      if (this.jobs.has(s.name)) throw new OnshiError('INTERNAL', `job ${s.name} is defined twice`);
      this.jobs.set(s.name, { ...s });
    }
  }

  has(name: string): boolean {
    return this.jobs.has(name);
  }

  /** The work of a scheduled job, given once the parts it uses exist (before start). */
  define(name: string, run: () => Promise<unknown>): void {
    const job = this.jobs.get(name);
    if (!job) throw new OnshiError('INTERNAL', `no schedule for job ${name}`);
    job.run = run;
  }

  async start(): Promise<void> {
    const idle = [...this.jobs.values()].filter((j) => !j.run).map((j) => j.name);
    if (idle.length > 0) throw new OnshiError('INTERNAL', `scheduled job(s) without work: ${idle.join(', ')}`);
    this.started = true;
    try {
      for (const job of this.jobs.values())
        job.task = cron.schedule(job.schedule, () => this.trigger(job), {
          timezone: TIMEZONE,
          name: job.name,
          noOverlap: true,
        });
    } catch (e) {
      await this.stop(); // a half-made start gives back the tasks it had made
      throw e;
    }
    for (const job of this.jobs.values()) if (job.atStart) void this.trigger(job);
  }

  /** Destroys the cron tasks, then waits for the runs still going. */
  async stop(): Promise<void> {
    this.started = false;
    for (const job of this.jobs.values()) {
      await job.task?.destroy();
      job.task = undefined;
    }
    await Promise.all([...this.jobs.values()].map((j) => j.running));
  }

  status(): JobStatus[] {
    return [...this.jobs.values()].map((j) => {
      const next = j.task?.getNextRun();
      return {
        name: j.name,
        schedule: j.schedule,
        running: j.running !== undefined,
        ...(next ? { nextRunAt: next.toISOString() } : {}),
        ...(j.lastResult ? { lastResult: { ...j.lastResult } } : {}),
      };
    });
  }

  /** One run, unless one is going already (then this turn is skipped). Never rejects. */
  private trigger(job: Job): Promise<void> {
    if (job.running || !this.started) return job.running ?? Promise.resolve();
    const now = this.o.now ?? Date.now;
    const started = now();
    const done = (ok: boolean, error?: unknown): void => {
      const durationMs = now() - started;
      job.lastResult = { at: new Date(started).toISOString(), ok, ...(ok ? {} : { code: codeOf(error) }), durationMs };
      if (!ok)
        this.o.logger.error(`scheduled job ${job.name} failed`, {
          event: 'job_failed',
          job: job.name,
          code: codeOf(error),
          error: (error as Error)?.message,
          durationMs,
        });
    };
    job.running = Promise.resolve()
      .then(job.run)
      .then(
        () => done(true),
        (e: unknown) => done(false, e),
      )
      .finally(() => {
        job.running = undefined;
      });
    return job.running;
  }
}
