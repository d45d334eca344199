"""Issue 12, item 11: names in other character sets, end to end through `procnode anonymize`.

DICOM's own character-set examples (PS3.5 Annexes H, I, J, K, shipped by Debian's python3-pydicom)
and single-byte sets, each with its patient's name components copied by pydicom, in the object's own
encoding, into ImageComments and StudyDescription; anonymized with clean-descriptors. pydicom is
the judge: it decodes the outputs, which must be valid UTF-8 (ISO_IR 192) and hold no component.
Before: the half-width katakana group, the Korean groups and a one-character Chinese family name
survived and the run reported 0 leaks."""
import json
import os
import subprocess
import unicodedata

import pydicom
import pytest

CHARSET_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "charset_files")
EXAMPLES = ["chrH31.dcm", "chrH32.dcm", "chrI2.dcm", "chrX1.dcm", "chrX2.dcm", "chrFren.dcm", "chrGerm.dcm",
            "chrGreek.dcm", "chrRuss.dcm", "chrArab.dcm", "chrHbrw.dcm"]


def components(name):
    return [part for group in str(name).split("=") for part in group.split("^") if part]


def planted(path, out_dir):
    ds = pydicom.dcmread(path)
    parts = components(ds.PatientName)
    ds.ImageComments = "Seen today: " + " , ".join(parts) + " , end of note"
    ds.StudyDescription = "Study " + " ".join(parts)
    ds.SeriesDescription = "example " + os.path.basename(path)  # kept by clean-descriptors: maps output to input
    target = os.path.join(out_dir, os.path.basename(path))
    ds.save_as(target)
    # pydicom wrote the text in the object's own encoding: read back, the components are there.
    again = pydicom.dcmread(target)
    assert all(p in again.ImageComments for p in parts), again.ImageComments
    return parts


def test_no_name_component_survives_in_any_character_set(cli_path, workdir):
    source = os.path.join(workdir, "in")
    os.makedirs(source)
    parts = {}
    for name in EXAMPLES:
        path = os.path.join(CHARSET_FILES, name)
        assert os.path.exists(path), f"{path} missing: python3-pydicom is in debian-packages.txt"
        parts[name] = planted(path, source)
    out = os.path.join(workdir, "out")
    env = dict(os.environ, PROCNODE_ANONYMIZATION_SECRET="charset secret")
    result = subprocess.run([cli_path, "anonymize", source, out, "--project", "charsets", "--options", "clean-descriptors"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["written"] == len(EXAMPLES) and summary["leaks"] == 0 and summary["refused"] == [], summary

    outputs = [os.path.join(root, f) for root, _, files in os.walk(out) for f in files]
    assert len(outputs) == len(EXAMPLES)
    seen = set()
    fold = lambda t: unicodedata.normalize("NFKC", t).casefold()  # noqa: E731
    for path in outputs:
        ds = pydicom.dcmread(path)
        name = ds.SeriesDescription.split()[-1]
        seen.add(name)
        assert ds.SpecificCharacterSet == "ISO_IR 192", (name, ds.SpecificCharacterSet)
        text = ds.ImageComments + " " + ds.StudyDescription
        assert "\ufffd" not in text, (name, text)
        assert "Seen today:" in ds.ImageComments and "end of note" in ds.ImageComments, (name, ds.ImageComments)
        for part in parts[name]:
            assert fold(part) not in fold(text), (name, part, text)
        assert all(fold(p) not in fold(str(ds.PatientName)) for p in parts[name])
    assert seen == set(EXAMPLES), "every example's components are gone from its output"


def test_undecodable_text_is_refused_naming_the_file(cli_path, workdir):
    source = os.path.join(workdir, "in")
    os.makedirs(source)
    ds = pydicom.dcmread(os.path.join(CHARSET_FILES, "chrFren.dcm"))
    ds.SpecificCharacterSet = "ISO_IR 999"
    ds.save_as(os.path.join(source, "unknown-charset.dcm"))
    env = dict(os.environ, PROCNODE_ANONYMIZATION_SECRET="charset secret")
    result = subprocess.run([cli_path, "anonymize", source, os.path.join(workdir, "out"), "--project", "charsets"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    [refused] = json.loads(result.stdout)["refused"]
    assert refused["file"].endswith("unknown-charset.dcm")
    assert 'Specific Character Set "ISO_IR 999" cannot be decoded' in refused["reason"], refused
