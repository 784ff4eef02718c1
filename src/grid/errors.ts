/** Errors raised by the data-file readers: always name the file and the record/line at fault. */

export class DataFileError extends Error {
  constructor(
    readonly file: string,
    /** Where in the file: "record 12 (byte 4096)", "line 37", "dataset spectra/incident"... */
    readonly where: string | undefined,
    detail: string,
  ) {
    super(where ? `${file}: ${where}: ${detail}` : `${file}: ${detail}`);
    this.name = 'DataFileError';
  }
}

/** Formats a zod error as "key: message; key: message" for DataFileError details. */
export function zodIssues(error: { issues: { path: (string | number)[]; message: string }[] }): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}
