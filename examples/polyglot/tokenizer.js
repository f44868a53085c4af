// A JavaScript atom in a Python pipeline (examples/polyglot): it turns lines of
// text into words and hands them to a Python atom that counts them.
import { Atom } from "radon-actors";

const STOPWORDS = new Set([
  "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "had",
  "has", "have", "he", "her", "his", "i", "in", "is", "it", "its", "not", "of",
  "on", "or", "she", "so", "that", "the", "their", "them", "they", "this", "to",
  "was", "we", "were", "which", "with", "you",
]);

// Letters of Latin scripts (the engine is built without Unicode property escapes).
const WORD = /[a-z0-9\u00e0-\u024f']+/g;

export class Tokenizer extends Atom {
  /** `counter` is the Python WordCounter's Ref; words shorter than `minLength` are dropped. */
  constructor(counter, minLength = 3) {
    super();
    this.counter = counter;
    this.minLength = minLength;
    this.lines = 0;
    this.words = 0;
  }

  /** Tokenize one line and add its words to the counter; how many it kept. */
  async line(text) {
    const kept = (text.toLowerCase().match(WORD) ?? [])
      .map((word) => word.replace(/^'+|'+$/g, ""))
      .filter((word) => word.length >= this.minLength && !STOPWORDS.has(word));
    this.lines += 1;
    this.words += kept.length;
    if (kept.length > 0) await this.counter.ask("add", kept);
    return kept.length;
  }

  /** What this tokenizer has done: {lines, words}. */
  stats() {
    return { lines: this.lines, words: this.words };
  }
}
