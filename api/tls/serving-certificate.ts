// The certificate the public port serves, rotated without a restart. When the files change (seen by
// fs.watch on their directories, by a periodic comparison where change events are missed, or on
// SIGHUP) the new pair is loaded and checked; listeners (the HTTPS server's setSecureContext) get it,
// so new handshakes use it while open connections finish on the old one. A pair that does not load
// is refused with one log line and the previous pair keeps serving.
//
// Directories, not files, are watched: certbot and editors replace a file by renaming another over
// it, and Kubernetes swaps a `..data` symlink, which a watch on the old file never reports. Any event
// in the directory only schedules a comparison of the files' bytes, so unrelated files cost nothing.
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../logger.ts';
import { CertificatePairError, loadCertificatePair, readPairDigest, type CertificatePair, type TlsFiles } from './certificate-pair.ts';

export type ReloadTrigger = 'file-change' | 'poll' | 'sighup';
export type ReloadOutcome = 'accepted' | 'unchanged' | 'refused';

export interface ServingCertificateOptions {
  /** How often the files are compared even without a change event (NFS and some mounts send none). */
  readonly pollIntervalMs: number;
  /** Wait this long after the last change event, so a certificate and its key replaced one after the other load as one pair. */
  readonly settleMs?: number;
}

export class ServingCertificate {
  readonly files: TlsFiles;
  readonly #logger: Logger;
  readonly #options: ServingCertificateOptions;
  readonly #listeners: ((pair: CertificatePair) => void)[] = [];
  readonly #watchers: FSWatcher[] = [];
  #current: CertificatePair;
  #settleTimer: NodeJS.Timeout | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  /** The last refused files and reason: the poll does not repeat the same refusal every interval. */
  #lastRefusal = '';

  /** Loads the first pair; throws CertificatePairError (start-up turns it into exit 78). */
  static open(files: TlsFiles, logger: Logger, options: ServingCertificateOptions): ServingCertificate {
    const pair = loadCertificatePair(files, (warning) => logger.warn({ file: warning.file, mode: warning.mode }, warning.message));
    return new ServingCertificate(files, pair, logger, options);
  }

  private constructor(files: TlsFiles, pair: CertificatePair, logger: Logger, options: ServingCertificateOptions) {
    this.files = files;
    this.#current = pair;
    this.#logger = logger;
    this.#options = options;
  }

  current(): CertificatePair {
    return this.#current;
  }

  onChange(listener: (pair: CertificatePair) => void): void {
    this.#listeners.push(listener);
  }

  /** Compares the files with the pair in use and switches to them if they changed and load. */
  reload(trigger: ReloadTrigger): ReloadOutcome {
    const { certFile, keyFile } = this.files;
    let digest: string | undefined;
    try {
      digest = readPairDigest(this.files);
    } catch {
      // Unreadable: loadCertificatePair below says which file and why.
    }
    if (digest === this.#current.digest) {
      this.#lastRefusal = '';
      if (trigger === 'sighup') this.#logger.info({ trigger, serial: this.#current.serial }, 'TLS certificate files unchanged');
      return 'unchanged';
    }
    let pair: CertificatePair;
    try {
      pair = loadCertificatePair(this.files, (warning) => this.#logger.warn({ file: warning.file, mode: warning.mode }, warning.message));
    } catch (error) {
      if (!(error instanceof CertificatePairError)) throw error;
      const refusal = `${digest ?? 'unreadable'} ${error.message}`;
      if (trigger === 'sighup' || refusal !== this.#lastRefusal) {
        this.#logger.error(
          { trigger, certFile, keyFile, file: error.file, reason: error.message, servingSerial: this.#current.serial },
          `TLS certificate refused: ${error.message}; the previous certificate keeps serving`,
        );
      }
      this.#lastRefusal = refusal;
      return 'refused';
    }
    try {
      for (const listener of this.#listeners) listener(pair);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#logger.error(
        { trigger, certFile, keyFile, reason, servingSerial: this.#current.serial },
        `TLS certificate refused by the server (${reason}); the previous certificate keeps serving`,
      );
      return 'refused';
    }
    const previous = this.#current;
    this.#current = pair;
    this.#lastRefusal = '';
    this.#logger.info(
      {
        trigger,
        certFile,
        serial: pair.serial,
        notAfter: pair.notAfter.toISOString(),
        subject: pair.subject,
        previousSerial: previous.serial,
      },
      'TLS certificate rotated',
    );
    return 'accepted';
  }

  /** Starts the periodic comparison and, unless `watchDirectories` is false, watching the files' directories. */
  watch(watchDirectories = true): void {
    this.#pollTimer = setInterval(() => this.reload('poll'), this.#options.pollIntervalMs);
    this.#pollTimer.unref();
    if (!watchDirectories) return;
    for (const dir of new Set([dirname(this.files.certFile), dirname(this.files.keyFile)])) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#scheduleReload());
        watcher.on('error', (error) => {
          this.#logger.warn(
            { dir, error: error.message, pollIntervalMs: this.#options.pollIntervalMs },
            'watching the TLS certificate directory failed; the periodic check still sees changes',
          );
          watcher.close();
        });
        this.#watchers.push(watcher);
      } catch (error) {
        this.#logger.warn(
          { dir, error: error instanceof Error ? error.message : String(error), pollIntervalMs: this.#options.pollIntervalMs },
          'cannot watch the TLS certificate directory; the periodic check still sees changes',
        );
      }
    }
  }

  close(): void {
    for (const watcher of this.#watchers.splice(0)) watcher.close();
    clearTimeout(this.#settleTimer);
    clearInterval(this.#pollTimer);
  }

  #scheduleReload(): void {
    clearTimeout(this.#settleTimer);
    this.#settleTimer = setTimeout(() => this.reload('file-change'), this.#options.settleMs ?? 250);
    this.#settleTimer.unref();
  }
}
