/**
 * The open files and sockets a process gained, for the failed-start test and its child: a multiset
 * difference of /proc/self/fd link names, less what the event loop itself keeps.
 */

/**
 * libuv opens one inotify instance per event loop on the first fs.watch (the file exchange) and
 * keeps it until the loop ends, whether or not a watcher is left; a watcher left open would show
 * as an FSEvent handle in the resources.
 */
export const LOOP_OWNED_FDS = new Set(['anon_inode:inotify']);

/** What `after` holds that `before` did not (a multiset difference). */
export function added(before: string[], after: string[]): string[] {
  const left = [...before];
  return after.filter((x) => {
    const i = left.indexOf(x);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}

/** The descriptors in `after` beyond `before`, the loop's own excepted. */
export const gainedFds = (before: string[], after: string[]): string[] =>
  added(before, after).filter((f) => !LOOP_OWNED_FDS.has(f));
