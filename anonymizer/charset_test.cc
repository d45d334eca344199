// Names in other character sets (issue 12, item 11). DICOM's own character-set examples (PS3.5
// Annexes H, I, J and K, as Debian's python3-pydicom ships them) and single-byte sets, each with its
// patient's name components copied, in the object's own encoding, into ImageComments and
// StudyDescription, de-identified with Clean Descriptors: no component survives in the kept text,
// the text is written back as valid UTF-8, and the leak checker finds every copy in the input.
// Before: the half-width katakana group, the Korean ideographic and phonetic groups and a
// one-character Chinese family name survived, and the leak checker reported nothing.
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "anonymizer/deidentify.h"
#include "anonymizer/dicom_text.h"
#include "anonymizer/leak_checker.h"
#include "anonymizer/name_match.h"
#include "core/error.h"
#include "core/json_limits.h"
#include "dicom/io.h"

namespace procnode {
namespace {

const std::string kCharsetFiles = "/usr/lib/python3/dist-packages/pydicom/data/charset_files/";

std::string Raw(DcmItem& ds, const DcmTagKey& tag) {
  OFString value;
  ds.findAndGetOFStringArray(tag, value);
  return std::string(value.c_str(), value.length());
}

// The raw (still encoded) components of a person name, cut at '^' and '=' only where they are
// delimiters: not inside an ISO 2022 two-byte G0 run (ESC $ B ... ESC ( B), nor as the trail byte
// of a GB18030 character.
std::vector<std::string> RawComponents(const std::string& name, bool gb18030) {
  std::vector<std::string> parts(1);
  bool multibyte_g0 = false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = name[i];
    if (c == 0x1B && i + 2 < name.size()) {
      if (name[i + 1] == '$') multibyte_g0 = name[i + 2] == 'B' || name[i + 2] == '@' || name[i + 2] == '(';
      if (name[i + 1] == '(') multibyte_g0 = false;
    }
    if (gb18030 && c >= 0x81 && i + 1 < name.size()) {
      const std::size_t length = (name[i + 1] >= '0' && name[i + 1] <= '9') ? 4 : 2;
      parts.back().append(name, i, length);
      i += length - 1;
      continue;
    }
    if (!multibyte_g0 && (c == '^' || c == '=')) {
      parts.emplace_back();
    } else {
      parts.back().push_back(static_cast<char>(c));
    }
  }
  std::vector<std::string> out;
  for (auto& p : parts) {
    if (!p.empty()) out.push_back(p);
  }
  return out;
}

std::string ToUtf8(DcmItem& ds, const std::string& raw) {
  DicomTextDecoder decoder(ds);
  const auto out = decoder.Decode(raw, EVR_PN);
  EXPECT_TRUE(out.has_value()) << raw;
  return out.value_or("");
}

struct Planted {
  std::unique_ptr<DcmFileFormat> file;
  std::vector<std::string> components_utf8;
};

// The example with every name component copied, in the object's encoding, into ImageComments and
// StudyDescription between words that must stay.
Planted Plant(std::unique_ptr<DcmFileFormat> file) {
  DcmDataset& ds = *file->getDataset();
  const std::string charset = Raw(ds, DCM_SpecificCharacterSet);
  const auto components = RawComponents(Raw(ds, DCM_PatientName), charset == "GB18030");
  std::string comments = "Seen today:", description = "Study";
  Planted planted;
  for (const auto& c : components) {
    comments += " " + c + " ,";
    description += " " + c;
    planted.components_utf8.push_back(ToUtf8(ds, c));
  }
  comments += " end of note";
  EXPECT_TRUE(ds.putAndInsertString(DCM_ImageComments, comments.c_str()).good());
  EXPECT_TRUE(ds.putAndInsertString(DCM_StudyDescription, description.c_str()).good());
  planted.file = std::move(file);
  return planted;
}

DeidentifyOptions CleanDescriptors() {
  DeidentifyOptions options;
  options.project = "charsets";
  options.secret = "test secret";
  ApplyOptionName("clean-descriptors", options);
  return options;
}

void ExpectNoComponentSurvives(const std::string& name, Planted planted) {
  SCOPED_TRACE(name);
  DcmFileFormat input(*planted.file);  // the planted input, kept for the leak checker
  const auto outcome = Deidentify(*planted.file, CleanDescriptors(), name);
  DcmDataset& out = *planted.file->getDataset();
  EXPECT_EQ(Raw(out, DCM_SpecificCharacterSet), "ISO_IR 192") << "written back as UTF-8";
  const std::string comments = Raw(out, DCM_ImageComments), description = Raw(out, DCM_StudyDescription);
  EXPECT_FALSE(InvalidUtf8At(comments).has_value()) << comments;
  EXPECT_FALSE(InvalidUtf8At(description).has_value()) << description;
  EXPECT_NE(comments.find("Seen today:"), std::string::npos) << "the rest of the text stays: " << comments;
  EXPECT_NE(comments.find("end of note"), std::string::npos) << comments;
  EXPECT_EQ(description.rfind("Study", 0), 0u) << description;
  ASSERT_FALSE(planted.components_utf8.empty());
  for (const auto& component : planted.components_utf8) {
    EXPECT_EQ(comments.find(component), std::string::npos) << "component " << component << " survived: " << comments;
    EXPECT_EQ(description.find(component), std::string::npos) << "component " << component << " survived: " << description;
    EXPECT_FALSE(ContainsTerm(FoldTerm(comments), PrepareTerm(component))) << component;
  }
  const auto terms = PhiTerms(outcome.identity, outcome.phi_terms);
  EXPECT_TRUE(ScanDataset(out, terms, name).empty()) << "the leak checker agrees with the scrubber";
  // The leak checker, on the input in its own encoding: every copied component is found.
  const auto hits = ScanDataset(*input.getDataset(), terms, name);
  bool comments_hit = false, description_hit = false;
  for (const auto& hit : hits) {
    comments_hit = comments_hit || hit.where.find("(0020,4000)") != std::string::npos;
    description_hit = description_hit || hit.where.find("(0008,1030)") != std::string::npos;
  }
  EXPECT_TRUE(comments_hit && description_hit) << hits.size() << " hit(s)";
  for (const auto& component : planted.components_utf8) {
    DcmFileFormat only(input);
    only.getDataset()->findAndDeleteElement(DCM_PatientName);
    EXPECT_FALSE(ScanDataset(*only.getDataset(), {component}, name).empty())
        << "the leak checker finds " << component << " in the input's own encoding";
  }
}

class CharsetExamples : public ::testing::TestWithParam<const char*> {};

TEST_P(CharsetExamples, NoNameComponentSurvivesCleanDescriptorsAndTheLeakCheckerFindsEveryCopy) {
  const std::string path = kCharsetFiles + GetParam();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " missing: install python3-pydicom (debian-packages.txt)";
  ExpectNoComponentSurvives(GetParam(), Plant(ReadDicomFile(path, GetParam())));
}

// Annex H (Japanese: ISO 2022 IR 87; IR 13 half-width katakana + IR 87), Annex I (Korean, ISO 2022
// IR 149), Annex J (Chinese, UTF-8 and GB18030), and single-byte Latin-1, Greek, Cyrillic,
// Arabic, Hebrew.
INSTANTIATE_TEST_SUITE_P(DicomExamples, CharsetExamples,
                         ::testing::Values("chrH31.dcm", "chrH32.dcm", "chrI2.dcm", "chrX1.dcm", "chrX2.dcm",
                                           "chrFren.dcm", "chrGerm.dcm", "chrGreek.dcm", "chrRuss.dcm", "chrArab.dcm",
                                           "chrHbrw.dcm"));

TEST(Charsets, ThaiNamesInTis620AreFound) {
  const std::string path = kCharsetFiles + "chrFren.dcm";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " missing: install python3-pydicom";
  auto file = ReadDicomFile(path, "thai");
  DcmDataset& ds = *file->getDataset();
  // สมชาย^ใจดี in TIS-620 (ISO_IR 166).
  ASSERT_TRUE(ds.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 166").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_PatientName, "\xca\xc1\xaa\xd2\xc2^\xe3\xa8\xb4\xd5").good());
  ExpectNoComponentSurvives("thai", Plant(std::move(file)));
}

TEST(Charsets, AHalfWidthNameIsFoundWrittenInFullWidthKatakana) {
  auto file = ReadDicomFile(kCharsetFiles + "chrX1.dcm", "kana");
  DcmDataset& ds = *file->getDataset();
  ASSERT_TRUE(ds.putAndInsertString(DCM_PatientName, "\xef\xbe\x94\xef\xbe\x8f\xef\xbe\x80\xef\xbe\x9e^\xef\xbe\x80\xef\xbe\x9b\xef\xbd\xb3").good());
  ASSERT_TRUE(ds.putAndInsertString(DCM_ImageComments, "\xe3\x83\xa4\xe3\x83\x9e\xe3\x83\x80\xe3\x81\x95\xe3\x82\x93 ok").good());
  Deidentify(*file, CleanDescriptors(), "kana");
  EXPECT_EQ(Raw(ds, DCM_ImageComments), "***\xe3\x81\x95\xe3\x82\x93 ok");
}

TEST(Charsets, TextThatCannotBeDecodedIsRefusedNamingTheObject) {
  auto file = ReadDicomFile(kCharsetFiles + "chrFren.dcm", "bad.dcm");
  ASSERT_TRUE(file->getDataset()->putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 999").good());
  try {
    Deidentify(*file, CleanDescriptors(), "bad.dcm");
    FAIL() << "an undecodable object is refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("bad.dcm: text in Specific Character Set \"ISO_IR 999\" cannot be decoded"),
              std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace procnode
