package qrphgate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// readmeMaxLines keeps the README what a new user reads first; the
// reference belongs in docs/.
const readmeMaxLines = 250

// TestDocsLinks checks every relative link in README.md and docs/*.md: the
// file or directory it names exists, and a #fragment matches a heading of the
// Markdown file it points into, slugged as GitHub slugs it.
func TestDocsLinks(t *testing.T) {
	for _, file := range docFiles(t) {
		for _, l := range markdownLinks(t, file) {
			if err := checkLink(file, l.target); err != nil {
				t.Errorf("%s:%d: link %q: %v", file, l.line, l.target, err)
			}
		}
	}
}

// TestDocsReachable: the README stays short and links every docs page, and
// the docs index does too.
func TestDocsReachable(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n >= readmeMaxLines {
		t.Errorf("README.md has %d lines; keep it under %d and move reference material to docs/", n, readmeMaxLines)
	}
	linked := func(from string) map[string]bool {
		set := map[string]bool{}
		for _, l := range markdownLinks(t, from) {
			path, _, _ := strings.Cut(l.target, "#")
			if path != "" && !isExternal(path) {
				set[filepath.Clean(filepath.Join(filepath.Dir(from), path))] = true
			}
		}
		return set
	}
	fromReadme, fromIndex := linked("README.md"), linked(filepath.Join("docs", "README.md"))
	for _, page := range docFiles(t) {
		if filepath.Dir(page) != "docs" {
			continue
		}
		if !fromReadme[page] {
			t.Errorf("README.md does not link %s", page)
		}
		if page != filepath.Join("docs", "README.md") && !fromIndex[page] {
			t.Errorf("docs/README.md does not link %s", page)
		}
	}
}

// TestGitHubSlug pins the slugs the link check relies on to what GitHub
// generates for this repository's kinds of heading.
func TestGitHubSlug(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"Quick start", "quick-start"},
		{"Keys and `key_encoding`", "keys-and-key_encoding"},
		{"Secrets: always `{env.*}` or `{file.*}`", "secrets-always-env-or-file"},
		{"Validation rules (create QR)", "validation-rules-create-qr"},
		{"`modulus_webhook` (inbound webhooks)", "modulus_webhook-inbound-webhooks"},
		{"The demo inbox: `/sandbox/inbox`", "the-demo-inbox-sandboxinbox"},
		{"Retries, breaker and credentials fuse", "retries-breaker-and-credentials-fuse"},
		{"Caddyfile → JSON — golden", "caddyfile--json--golden"},
		{"[Linked](x.md) *heading*", "linked-heading"},
		{"Heading with a closing sequence ##", "heading-with-a-closing-sequence"},
	} {
		if got := githubSlug(tc.heading); got != tc.want {
			t.Errorf("githubSlug(%q) = %q, want %q", tc.heading, got, tc.want)
		}
	}
}

// TestMarkdownLinksIgnoresCode: links inside code blocks and code spans are
// text, not links; the check must neither follow nor miss real ones.
func TestMarkdownLinksIgnoresCode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "x.md")
	doc := "# T\n\n[a](a.md) `[b](b.md)` ``[c](c.md)``\n\n```md\n[d](d.md)\n```\n\n![e](e.png \"title\") [f](https://example.com/f.md)\n\n[g]: g.md\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range markdownLinks(t, file) {
		got = append(got, fmt.Sprintf("%d:%s", l.line, l.target))
	}
	want := []string{"3:a.md", "9:e.png", "9:https://example.com/f.md", "11:g.md"}
	if !slices.Equal(got, want) {
		t.Errorf("links = %q, want %q", got, want)
	}
	if err := checkLink(file, "#t"); err != nil {
		t.Errorf("anchor of an existing heading: %v", err)
	}
	for _, bad := range []string{"a.md", "#missing", "x.md#missing"} {
		if checkLink(file, bad) == nil {
			t.Errorf("checkLink(%q) found nothing wrong", bad)
		}
	}
}

// docFiles lists README.md and every Markdown file in docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{"README.md"}, files...)
}

type mdLink struct {
	line   int
	target string
}

var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)`)
	atxHeading = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*$`)
)

// markdownLinks returns the link targets of a Markdown file, outside fenced
// code blocks and code spans.
func markdownLinks(t *testing.T, file string) []mdLink {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var links []mdLink
	for i, line := range proseLines(string(b)) {
		if line == "" {
			continue
		}
		line = stripCodeSpans(line)
		if m := refLink.FindStringSubmatch(line); m != nil {
			links = append(links, mdLink{i + 1, m[1]})
			continue
		}
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			links = append(links, mdLink{i + 1, m[1]})
		}
	}
	return links
}

// proseLines splits a Markdown text into lines, blanking those inside fenced
// code blocks (``` or ~~~) so that line numbers stay right.
func proseLines(text string) []string {
	lines := strings.Split(text, "\n")
	fence := ""
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = trimmed[:3]
			lines[i] = ""
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			lines[i] = ""
		}
	}
	return lines
}

// stripCodeSpans removes `code spans` (of any backtick run length) from a line.
func stripCodeSpans(line string) string {
	var out strings.Builder
	for {
		start := strings.Index(line, "`")
		if start < 0 {
			out.WriteString(line)
			return out.String()
		}
		n := len(line[start:]) - len(strings.TrimLeft(line[start:], "`"))
		run := line[start : start+n]
		end := -1
		for j := start + n; j < len(line); {
			k := strings.Index(line[j:], run)
			if k < 0 {
				break
			}
			k += j
			if m := len(line[k:]) - len(strings.TrimLeft(line[k:], "`")); m == n {
				end = k
				break
			} else {
				j = k + m
			}
		}
		if end < 0 { // an unmatched run is literal text
			out.WriteString(line[:start+n])
			line = line[start+n:]
			continue
		}
		out.WriteString(line[:start])
		line = line[end+n:]
	}
}

var urlScheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// isExternal reports whether a link target is a URL (a scheme, or
// protocol-relative) rather than a path in the repository.
func isExternal(target string) bool {
	return strings.HasPrefix(target, "//") || urlScheme.MatchString(target)
}

// checkLink resolves one link target found in file.
func checkLink(file, target string) error {
	if isExternal(target) {
		return nil
	}
	path, fragment, _ := strings.Cut(target, "#")
	dest := file
	if path != "" {
		dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		if _, err := os.Stat(dest); err != nil {
			return fmt.Errorf("%s does not exist", dest)
		}
	}
	if fragment == "" {
		return nil
	}
	if !strings.HasSuffix(dest, ".md") {
		return fmt.Errorf("a #fragment into %s, which is not Markdown", dest)
	}
	b, err := os.ReadFile(dest)
	if err != nil {
		return err
	}
	if !slices.Contains(headingSlugs(string(b)), fragment) {
		return fmt.Errorf("%s has no heading with the anchor #%s", dest, fragment)
	}
	return nil
}

// headingSlugs returns the anchors GitHub gives a file's headings, with
// -1, -2... for repeated ones.
func headingSlugs(text string) []string {
	var slugs []string
	seen := map[string]int{}
	for _, line := range proseLines(text) {
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := githubSlug(m[2])
		if n := seen[slug]; n > 0 {
			seen[slug]++
			slug = fmt.Sprintf("%s-%d", slug, n)
		} else {
			seen[slug] = 1
		}
		slugs = append(slugs, slug)
	}
	return slugs
}

var (
	closingHashes = regexp.MustCompile(`\s+#+$`)
	headingLink   = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// githubSlug turns a heading's text into its anchor as GitHub does: the
// rendered text (no link targets, no formatting marks), lower-cased, with
// everything but letters, digits, marks, '_', '-' and spaces dropped, and
// each space a hyphen.
func githubSlug(heading string) string {
	heading = closingHashes.ReplaceAllString(heading, "")
	heading = headingLink.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.IsMark(r), r == '_', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestDocsNameWhatCIInstalls: docs/development.md's "What the tests need"
// names every command .ci/run checks for and every Debian package it
// installs, so a developer can set up what CI has.
func TestDocsNameWhatCIInstalls(t *testing.T) {
	ci, err := os.ReadFile(filepath.Join(".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := os.ReadFile(filepath.Join("docs", "development.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(dev), "## What the tests need\n")
	if !ok {
		t.Fatal("docs/development.md has no section \"What the tests need\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var want []string
	for _, m := range regexp.MustCompile(`apt_install ([a-z0-9 .+-]+)`).FindAllStringSubmatch(string(ci), -1) {
		want = append(want, strings.Fields(m[1])...)
	}
	for _, m := range regexp.MustCompile(`missing\+=\(([a-z0-9.+-]+)\)`).FindAllStringSubmatch(string(ci), -1) {
		want = append(want, m[1])
	}
	for _, m := range regexp.MustCompile(`command -v ([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(ci), -1) {
		if m[1] != "apt-get" && m[1] != "go" { // the setup's own tools
			want = append(want, m[1])
		}
	}
	// What .ci/run checks by path or import rather than command -v.
	want = append(want, "chromium", "flask")
	if len(want) < 15 {
		t.Fatalf("found only %d tools and packages in .ci/run: the test lost its way (%v)", len(want), want)
	}
	// The words of the section's code spans.
	named := map[string]bool{}
	for _, span := range regexp.MustCompile("`[^`]+`").FindAllString(section, -1) {
		for _, w := range regexp.MustCompile(`[a-z0-9.+-]+`).FindAllString(span, -1) {
			named[w] = true
		}
	}
	for _, w := range slices.Compact(slices.Sorted(slices.Values(want))) {
		if !named[w] {
			t.Errorf("docs/development.md \"What the tests need\" does not name %q, which .ci/run installs or requires", w)
		}
	}
}
