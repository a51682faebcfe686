// Command render renders a Helm chart as `helm template` does, for machines without the helm binary: Go text/template
// with Sprig's functions and Helm's own (include, tpl, required, fail, toYaml, fromYaml, toJson, fromJson, lookup),
// the objects .Values, .Release, .Chart, .Capabilities, .Files (Get) and .Template, values merged from the chart's values.yaml, -f
// files and --set flags, "<no value>" removed, partials (_*.tpl) not printed, and NOTES.txt rendered on request.
//
//	render -chart deploy/helm/pushservice [-name push] [-namespace default] [-f values.yaml]... [-set a.b=c]...
//	       [-values-out merged.json] [-notes-out NOTES.txt] > manifests.yaml
//
// Built with the Go and Sprig of Debian's golang-go and golang-github-masterminds-sprig-dev (GOPATH mode, no network).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	chartDir := flag.String("chart", "", "the chart directory")
	release := flag.String("name", "release", "the release name")
	namespace := flag.String("namespace", "default", "the release namespace")
	valuesOut := flag.String("values-out", "", "write the merged values here as JSON")
	notesOut := flag.String("notes-out", "", "write the rendered NOTES.txt here")
	jsonOut := flag.String("json-out", "", "write the rendered objects here as a JSON array (for tests)")
	var files, sets multiFlag
	flag.Var(&files, "f", "a values file (repeatable)")
	flag.Var(&sets, "set", "key.path=value (repeatable)")
	flag.Parse()
	if *chartDir == "" {
		fail(errors.New("-chart is required"))
	}

	out, notes, values, err := render(*chartDir, *release, *namespace, files, sets)
	if err != nil {
		fail(err)
	}
	if *valuesOut != "" {
		data, _ := json.MarshalIndent(values, "", "  ")
		if err := os.WriteFile(*valuesOut, data, 0o644); err != nil {
			fail(err)
		}
	}
	if *notesOut != "" {
		if err := os.WriteFile(*notesOut, []byte(notes), 0o644); err != nil {
			fail(err)
		}
	}
	if *jsonOut != "" {
		var objects []json.RawMessage
		for _, document := range strings.Split(out, "\n---\n") {
			converted, err := yaml.YAMLToJSON([]byte(strings.TrimPrefix(document, "---\n")))
			if err != nil {
				fail(err)
			}
			if string(converted) != "null" {
				objects = append(objects, converted)
			}
		}
		data, _ := json.MarshalIndent(objects, "", "  ")
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			fail(err)
		}
	}
	fmt.Print(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "Error:", err)
	os.Exit(1)
}

func render(chartDir, release, namespace string, files, sets []string) (string, string, map[string]interface{}, error) {
	chart := map[string]interface{}{}
	if err := readYaml(filepath.Join(chartDir, "Chart.yaml"), &chart); err != nil {
		return "", "", nil, err
	}
	values := map[string]interface{}{}
	if err := readYaml(filepath.Join(chartDir, "values.yaml"), &values); err != nil {
		return "", "", nil, err
	}
	for _, file := range files {
		override := map[string]interface{}{}
		if err := readYaml(file, &override); err != nil {
			return "", "", nil, err
		}
		values = merge(values, override)
	}
	for _, set := range sets {
		key, value, ok := strings.Cut(set, "=")
		if !ok {
			return "", "", nil, fmt.Errorf("--set %q: expected key=value", set)
		}
		values = merge(values, nested(strings.Split(key, "."), parseScalar(value)))
	}

	name := fmt.Sprint(chart["name"])
	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Chart": map[string]interface{}{
			"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"], "Description": chart["description"],
			"Type": chart["type"], "KubeVersion": chart["kubeVersion"],
		},
		"Files": chartFiles{dir: chartDir},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": "v1.30.0", "Major": "1", "Minor": "30"},
		},
	}

	root := template.New("gotpl")
	root.Option("missingkey=zero")
	included := map[string]int{}
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if included[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		included[name]++
		defer func() { included[name]-- }()
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	funcs["required"] = func(message string, value interface{}) (interface{}, error) {
		if value == nil {
			return nil, errors.New(message)
		}
		if s, ok := value.(string); ok && s == "" {
			return nil, errors.New(message)
		}
		return value, nil
	}
	funcs["fail"] = func(message string) (string, error) { return "", errors.New(message) }
	funcs["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["toJson"] = func(v interface{}) string {
		data, _ := json.Marshal(v)
		return string(data)
	}
	funcs["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	// No cluster to look in: helm template returns an empty object too.
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) { return map[string]interface{}{}, nil }
	root.Funcs(funcs)

	templatesDir := filepath.Join(chartDir, "templates")
	entries, err := os.ReadDir(templatesDir)
	if err != nil {
		return "", "", nil, err
	}
	var names []string
	for _, entry := range entries {
		if entry.IsDir() {
			continue
		}
		text, err := os.ReadFile(filepath.Join(templatesDir, entry.Name()))
		if err != nil {
			return "", "", nil, err
		}
		full := path.Join(name, "templates", entry.Name())
		if _, err := root.New(full).Parse(string(text)); err != nil {
			return "", "", nil, err
		}
		names = append(names, full)
	}
	sort.Strings(names)

	var out, notes strings.Builder
	for _, full := range names {
		base := path.Base(full)
		if strings.HasPrefix(base, "_") {
			continue
		}
		scope := copyTop(top)
		scope["Template"] = map[string]interface{}{"Name": full, "BasePath": path.Join(name, "templates")}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, full, scope); err != nil {
			return "", "", nil, err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			notes.WriteString(text)
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", full, strings.TrimSpace(text))
	}
	return out.String(), notes.String(), values, nil
}

func copyTop(top map[string]interface{}) map[string]interface{} {
	c := make(map[string]interface{}, len(top)+1)
	for k, v := range top {
		c[k] = v
	}
	return c
}

// readYaml reads YAML as Helm does: through JSON, so numbers are float64.
func readYaml(file string, into *map[string]interface{}) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if *into == nil {
		*into = map[string]interface{}{}
	}
	return nil
}

// merge coalesces override into base as Helm does: maps merge key by key, anything else replaces, null deletes.
func merge(base, override map[string]interface{}) map[string]interface{} {
	result := make(map[string]interface{}, len(base))
	for k, v := range base {
		result[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(result, k)
			continue
		}
		if vm, ok := v.(map[string]interface{}); ok {
			if bm, ok := result[k].(map[string]interface{}); ok {
				result[k] = merge(bm, vm)
				continue
			}
		}
		result[k] = v
	}
	return result
}

func nested(keys []string, value interface{}) map[string]interface{} {
	if len(keys) == 1 {
		return map[string]interface{}{keys[0]: value}
	}
	return map[string]interface{}{keys[0]: nested(keys[1:], value)}
}

// parseScalar types a --set value as Helm's strvals does: integers, booleans, null, else a string.
func parseScalar(s string) interface{} {
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	return s
}

// chartFiles is Helm's .Files: the chart's files by path relative to its root, symbolic links followed as Helm follows
// them when it loads a chart directory; a file that is not there reads as empty, as in Helm.
type chartFiles struct{ dir string }

func (f chartFiles) Get(name string) string {
	data, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(name)))
	if err != nil {
		return ""
	}
	return string(data)
}
