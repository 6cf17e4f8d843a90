import { InvalidArgumentError } from 'commander';

/** A commander option parser for a positive number, with the option's name in the error. */
export function positiveNumber(name: string, { integer = false } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(
        `${name} must be a positive ${integer ? 'whole number' : 'number'} (got "${value}")`,
      );
    }
    return n;
  };
}

/** A commander option parser for a percentage, 0 to 100, with the option's name in the error. */
export function percent(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) {
      throw new InvalidArgumentError(`${name} must be a percentage from 0 to 100 (got "${value}")`);
    }
    return n;
  };
}

/** Colors only for a terminal, and never with NO_COLOR set (https://no-color.org). */
export function useColor(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}
