#!/usr/bin/env bash
# The resumable training queue: two one-thread trainers in the background, one per core, each
# taking the next model that is neither done nor locked by the other (see README, "The training
# queue"). Checkpoints resume where they stopped; logs go to cache/train-<profile>-<k>.log.
#
#     bash tools/train_queue.sh [PROFILE] [FAMILY] [TRAINERS]     # defaults: book-next all 2
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
profile="${1:-book-next}" family="${2:-all}" trainers="${3:-2}"
export DIFFGEN_DATA="${DIFFGEN_DATA:-$(cd .. && pwd)/shared/data}" OMP_NUM_THREADS=1
mkdir -p cache
python -m diffgen_utils.train --profile "$profile" --family "$family" --list
for k in $(seq 1 "$trainers"); do
    nohup python -m diffgen_utils.train --profile "$profile" --family "$family" \
        > "cache/train-$profile-$k.log" 2>&1 &
    echo "trainer $k: pid $!, log cache/train-$profile-$k.log"
    sleep 20  # the first trainer takes its lock before the next one looks
done
