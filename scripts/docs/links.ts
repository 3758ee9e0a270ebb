// Checks the relative links of the documentation: each must name a file of the repository (the
// TypeDoc site copies linked files, not folders), and a `#fragment` must name a heading of the Markdown file it points to (with
// GitHub's anchors, which TypeDoc's site keeps too).

import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

/** A link that leads nowhere. */
export interface LinkProblem {
  file: string;
  line: number;
  message: string;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function githubAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/**
 * TypeDoc's anchor for a heading (its `Slugger`): inline code left out, punctuation dropped,
 * spaces to hyphens, the first run of hyphens made one, lower case.
 */
export function typedocAnchor(heading: string): string {
  const slug = heading
    .replace(/`[^`]*`/g, "")
    .trim()
    .replace(/[\u2000-\u206F\u2E00-\u2E7F\\'!"#$%&()*+,./:;<=>?@[\]^`{|}~]/g, "")
    .replace(/\s/g, "-")
    .replace(/--+/, "-");
  return (slug || "_").toLowerCase();
}

/**
 * The anchors of a Markdown text's headings (outside code fences), duplicates numbered, that
 * GitHub and TypeDoc both give: a link to any other would work in only one of the two.
 */
export function anchorsOf(markdown: string): Set<string> {
  const github = anchorsBy(markdown, githubAnchor);
  const typedoc = anchorsBy(markdown, typedocAnchor);
  return new Set([...github].filter((anchor) => typedoc.has(anchor)));
}

function anchorsBy(markdown: string, anchorOf: (heading: string) => string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text)?.[1];
    if (heading === undefined) continue;
    const anchor = anchorOf(heading);
    const count = seen.get(anchor) ?? 0;
    seen.set(anchor, count + 1);
    anchors.add(count === 0 ? anchor : `${anchor}-${String(count)}`);
  }
  return anchors;
}

/** The Markdown links (`[text](target)`, images too) of a text, outside code, with their lines. */
function linksOf(markdown: string): { target: string; line: number }[] {
  return proseLines(markdown).flatMap(({ text, line }) =>
    [...text.replace(/`[^`]*`/g, "").matchAll(/\]\(([^()\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => ({
      target: match[1] ?? "",
      line,
    })),
  );
}

/** The lines of a Markdown text outside fenced code blocks, with their numbers (from 1). */
function proseLines(markdown: string): { text: string; line: number }[] {
  const lines: { text: string; line: number }[] = [];
  let fence: string | undefined;
  for (const [index, text] of markdown.split("\n").entries()) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(text)?.[1];
    if (marker !== undefined) {
      if (fence === undefined) fence = marker;
      else if (marker.startsWith(fence) && text.trim() === marker) fence = undefined;
      continue;
    }
    if (fence === undefined) lines.push({ text, line: index + 1 });
  }
  return lines;
}

/**
 * Checks the relative links of the given Markdown files (paths relative to `root`). Links with
 * a scheme (`https:`, `mailto:`) are not followed.
 */
export function checkLinks(root: string, files: readonly string[]): LinkProblem[] {
  const problems: LinkProblem[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (file: string): Set<string> => {
    let found = anchorCache.get(file);
    if (found === undefined) {
      found = anchorsOf(readFileSync(join(root, file), "utf8"));
      anchorCache.set(file, found);
    }
    return found;
  };
  for (const file of files) {
    for (const { target, line } of linksOf(readFileSync(join(root, file), "utf8"))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [path = "", fragment] = target.split("#", 2);
      const resolved = path === "" ? file : normalize(join(dirname(file), path));
      if (!existsSync(join(root, resolved))) {
        problems.push({ file, line, message: `link to ${target}: ${resolved} does not exist` });
        continue;
      }
      if (!statSync(join(root, resolved)).isFile()) {
        problems.push({
          file,
          line,
          message: `link to ${target}: a folder, which TypeDoc cannot publish`,
        });
        continue;
      }
      if (fragment !== undefined && resolved.endsWith(".md") && !anchors(resolved).has(fragment)) {
        problems.push({
          file,
          line,
          message: `link to ${target}: no heading #${fragment} in ${resolved} (as GitHub and TypeDoc both name it: keep code out of linked headings)`,
        });
      }
    }
  }
  return problems;
}
