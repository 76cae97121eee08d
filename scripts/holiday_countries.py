"""Write nurture/spec/holiday_countries.json from the installed `holidays` (after a lock bump).

`nurture validate` reads the country codes there instead of importing `holidays`, a fifth of a
second of start-up; with another `holidays` installed it imports it (tests/test_startup.py
checks the file is current).
"""

import json
from importlib.metadata import version

import holidays

from nurture.spec.window import HOLIDAY_COUNTRIES

countries = sorted(holidays.list_supported_countries().items())
lines = ",\n".join(f"  {json.dumps(code)}: {json.dumps(list(parts))}" for code, parts in countries)
text = f'{{\n"holidays": {json.dumps(version("holidays"))},\n"countries": {{\n{lines}\n}}\n}}\n'
HOLIDAY_COUNTRIES.write_text(text, encoding="utf-8")
print(f"wrote {HOLIDAY_COUNTRIES}: {len(countries)} countries of holidays {version('holidays')}")
