#!/bin/sh
setsid sleep 3179 > /dev/null 2>&1 &
echo '{"measurements": [{"name": "Children left", "value": 1, "unit": "1"}]}' > /output/measurements.json
