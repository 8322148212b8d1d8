#!/usr/bin/env bash
# The vulnerability gate of the deploy workflow: waits for ECR's scan-on-push of every image the
# stack just pushed, and fails when a CRITICAL finding is not waived.
#
#   scripts/ecr-scan-gate.sh STACK
#
# Waiving: add the finding's name (e.g. CVE-2026-12345) to infra/scan-waivers.json with a reason
# and an expiry date; an expired waiver no longer counts. Review waivers in the PR that adds them.
set -euo pipefail
STACK=${1:?usage: ecr-scan-gate.sh STACK}
WAIVERS=$(dirname "$0")/../infra/scan-waivers.json
TODAY=$(date -u +%F)
waived() { node -e '
  const [file, today, name] = process.argv.slice(1);
  const list = JSON.parse(require("fs").readFileSync(file, "utf8")).waivers ?? [];
  process.exit(list.some((w) => w.finding === name && w.expires >= today) ? 0 : 1);
' "$WAIVERS" "$TODAY" "$1"; }

failed=0
for ref in $(pulumi stack output images --stack "$STACK" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const v of Object.values(JSON.parse(s)))if(String(v).includes("@sha256:"))console.log(v)})'); do
  repo=${ref%@*}; repo=${repo#*/}; digest=${ref#*@}
  echo "== $repo@$digest"
  aws ecr wait image-scan-complete --repository-name "$repo" --image-id "imageDigest=$digest"
  for name in $(aws ecr describe-image-scan-findings --repository-name "$repo" --image-id "imageDigest=$digest" \
    --query 'imageScanFindings.findings[?severity==`CRITICAL`].name' --output text); do
    if waived "$name"; then echo "  waived: $name"; else echo "  CRITICAL: $name"; failed=1; fi
  done
done
if [[ $failed -ne 0 ]]; then
  echo "vulnerability gate: CRITICAL findings (waive one in infra/scan-waivers.json with a reason and an expiry)"
  exit 1
fi
echo "vulnerability gate: no unwaived CRITICAL findings"
