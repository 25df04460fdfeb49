package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// pulumiField is the "pulumi" section of a package.json that ships a resource plugin, e.g.
// @pulumi/command's {"resource": true, "name": "command", "version": "1.2.1"}.
type pulumiField struct {
	Resource bool   `json:"resource"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Server   string `json:"server"`
}

// requiredPlugins finds, as the upstream Node.js host does, every package under the program's
// node_modules folders (deeply) whose package.json declares a resource plugin. Symlinks are
// followed once: a folder already seen (a package linked to an ancestor) is not walked again.
func requiredPlugins(programDir string) []*pulumirpc.PackageDependency {
	seen := map[string]bool{}
	found := map[string]*pulumirpc.PackageDependency{}
	var walk func(dir string, inNodeModules bool)
	walk = func(dir string, inNodeModules bool) {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil || seen[real] {
			return
		}
		seen[real] = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			st, err := os.Stat(p)
			if err != nil {
				continue
			}
			if st.IsDir() {
				walk(p, inNodeModules || filepath.Base(dir) == "node_modules")
			} else if inNodeModules && e.Name() == "package.json" {
				if dep := pluginOf(p); dep != nil {
					found[dep.Name+"@"+dep.Version] = dep
				}
			}
		}
	}
	walk(programDir, false)
	keys := make([]string, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	deps := make([]*pulumirpc.PackageDependency, 0, len(keys))
	for _, k := range keys {
		deps = append(deps, found[k])
	}
	return deps
}

func pluginOf(packageJSON string) *pulumirpc.PackageDependency {
	b, err := os.ReadFile(packageJSON)
	if err != nil {
		return nil
	}
	var pkg struct {
		Name    string          `json:"name"`
		Version string          `json:"version"`
		Pulumi  json.RawMessage `json:"pulumi"`
	}
	if json.Unmarshal(b, &pkg) != nil || len(pkg.Pulumi) == 0 {
		return nil
	}
	var f pulumiField
	if json.Unmarshal(pkg.Pulumi, &f) != nil || !f.Resource {
		return nil
	}
	if f.Name == "" {
		f.Name = filepath.Base(filepath.Dir(packageJSON))
	}
	if f.Version == "" {
		f.Version = pkg.Version
	}
	return &pulumirpc.PackageDependency{Name: f.Name, Kind: "resource", Version: "v" + trimV(f.Version), Server: f.Server}
}

func trimV(v string) string {
	if len(v) > 0 && v[0] == 'v' {
		return v[1:]
	}
	return v
}
