#!/usr/bin/env bash
# Seeds the corpus of the `config` fuzz target from the project's own config
# sets: every YAML file under tests/data/ and examples/ as a one-file input,
# every config set that is a folder as its files joined by the target's file
# separator (in the order `config::load` reads them), and the committed
# regressions. Writes fuzz/corpus/config/ (git-ignored); run it again after
# adding fixtures. libFuzzer adds what it finds to the same folder.
set -euo pipefail
cd "$(dirname "$0")"
root=..
out=corpus/config
mkdir -p "$out"
n=0

name_of() { # a path below the crate root as a flat file name
  local path=${1#"$root"/}
  printf 'seed-%s' "${path//\//_}"
}

# One-file inputs.
while IFS= read -r -d '' file; do
  cp "$file" "$out/$(name_of "$file")"
  n=$((n + 1))
done < <(find "$root/tests/data" "$root/examples" -not -path '*/.*' -type f \
  \( -name '*.yaml' -o -name '*.yml' \) -print0)

# Config sets that are folders: their files, sorted, joined by "\n#file\n".
for dir in "$root"/tests/data/valid/*/ "$root"/tests/data/invalid/*/ "$root"/examples/*/; do
  dir=${dir%/}
  mapfile -d '' files < <(find "$dir" -not -path '*/.*' -type f \
    \( -name '*.yaml' -o -name '*.yml' \) -print0 | LC_ALL=C sort -z)
  [ "${#files[@]}" -gt 0 ] || continue
  target="$out/$(name_of "$dir")-set"
  : >"$target"
  for i in "${!files[@]}"; do
    [ "$i" -eq 0 ] || printf '\n#file\n' >>"$target"
    cat "${files[$i]}" >>"$target"
  done
  n=$((n + 1))
done

# Every finding so far, so the fuzzer starts from where they were.
for file in regressions/*; do
  [ -f "$file" ] || continue
  cp "$file" "$out/regression-$(basename "$file")"
  n=$((n + 1))
done

echo "seeded $out with $n inputs"
