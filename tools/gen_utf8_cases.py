"""Writes tests/data/utf8_replace.txt: byte strings and what Python's
bytes.decode("utf-8", errors="replace") makes of them (one U+FFFD per maximal invalid
subpart), the rule the CLI's JSON strings follow. One case per line: the input's hex, a
tab, the replaced text's UTF-8 hex. Any Python 3; seeded, so reruns write the same file."""
import random
import sys

rng = random.Random(2401)
PIECES = [
    lambda: bytes([rng.randrange(0x00, 0x80)]),                      # ASCII, controls included
    lambda: bytes([rng.randrange(0x80, 0xC0)]),                      # stray continuation
    lambda: bytes([rng.choice([0xC0, 0xC1, 0xF5, 0xF8, 0xFE, 0xFF])]),  # never valid
    lambda: bytes([rng.randrange(0xC2, 0xF5)]),                      # a lead byte alone
    lambda: chr(rng.choice([rng.randrange(0x80, 0x800), rng.randrange(0x800, 0xD800),
                            rng.randrange(0xE000, 0x10000), rng.randrange(0x10000, 0x110000)])
                ).encode("utf-8", "surrogatepass"),                  # a valid character
    lambda: chr(rng.randrange(0x800, 0x110000)).encode("utf-8", "surrogatepass")[:-1],  # cut off
    lambda: bytes([0xED, rng.randrange(0xA0, 0xC0), rng.randrange(0x80, 0xC0)]),  # a surrogate
    lambda: bytes([0xE0, rng.randrange(0x80, 0xA0)]),                # overlong
    lambda: bytes([0xF0, rng.randrange(0x80, 0x90)]),                # overlong
    lambda: bytes([0xF4, rng.randrange(0x90, 0xC0)]),                # above U+10FFFF
]

def case():
    return b"".join(rng.choice(PIECES)() for _ in range(rng.randrange(1, 7)))

out = open(sys.argv[1] if len(sys.argv) > 1 else "tests/data/utf8_replace.txt", "w")
for _ in range(3000):
    b = case()
    out.write(b.hex() + "\t" + b.decode("utf-8", "replace").encode("utf-8").hex() + "\n")
