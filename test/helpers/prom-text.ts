// A strict parse of the Prometheus text exposition format (0.0.4), as a scraper reads it: every sample
// belongs to a family declared by # HELP and # TYPE before it, names and labels are well formed, values
// are numbers. Throws naming the line on anything else, so a test that parses also checks the format.

export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface Family { name: string; type: string; help: string; samples: Sample[] }

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] };

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = new RegExp(`(${NAME})="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"(,|$)`, 'y');
  for (let at = 0; at < text.length;) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) throw new Error(`bad labels in: ${line}`);
    if (m[1] in labels) throw new Error(`label ${m[1]} twice in: ${line}`);
    labels[m[1]] = m[2].replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    at = re.lastIndex;
  }
  return labels;
}

/** The families of a scrape, by name. */
export function parsePromText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  const sampleRe = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const help = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    const type = new RegExp(`^# TYPE (${NAME}) (\\w+)$`).exec(line);
    if (help) {
      if (families.has(help[1])) throw new Error(`family ${help[1]} declared twice`);
      current = { name: help[1], type: '', help: help[2], samples: [] };
      families.set(current.name, current);
    } else if (type) {
      if (current?.name !== type[1] || !TYPES.has(type[2])) throw new Error(`TYPE without its HELP, or an unknown type: ${line}`);
      current.type = type[2];
    } else {
      const m = sampleRe.exec(line);
      if (!m || !current?.type) throw new Error(`not a sample of a declared family: ${line}`);
      const suffix = (SUFFIXES[current.type] ?? ['']).find((s) => m[1] === current!.name + s);
      if (suffix === undefined) throw new Error(`sample ${m[1]} outside its family ${current.name}`);
      // As Prometheus reads it (Go's ParseFloat): NaN and Inf in any case; prom-client writes "Nan".
      const word = m[3].toLowerCase();
      const value = word === '+inf' || word === 'inf' ? Infinity : word === '-inf' ? -Infinity : word === 'nan' ? NaN : Number(m[3]);
      if (Number.isNaN(value) && word !== 'nan') throw new Error(`bad value in: ${line}`);
      current.samples.push({ name: m[1], labels: parseLabels(m[2] ?? '', line), value });
    }
  }
  return families;
}

/** The value of the one sample named `name` whose labels include `labels`; undefined when none. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    const s = f.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    if (s) return s.value;
  }
  return undefined;
}
