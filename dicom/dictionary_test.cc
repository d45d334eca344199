#include "dicom/dictionary.h"

#include "dicom/attributes.h"

#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcdicent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace procnode {
namespace {

std::string Describe(const DcmDictEntry& e) {
  char text[96];
  std::snprintf(text, sizeof text, "(%04X-%04X,%04X-%04X) %d/%d VR %d VM %d-%d ", e.getGroup(), e.getUpperGroup(),
                e.getElement(), e.getUpperElement(), static_cast<int>(e.getGroupRangeRestriction()),
                static_cast<int>(e.getElementRangeRestriction()), static_cast<int>(e.getEVR()), e.getVMMin(),
                e.getVMMax());
  return text + std::string(e.getTagName() ? e.getTagName() : "") + " [" +
         (e.getPrivateCreator() ? e.getPrivateCreator() : "") + "] " + (e.getStandardVersion() ? e.getStandardVersion() : "");
}

// The table must say exactly what DCMTK reads from the installed dicom.dic and private.dic: every
// standard and private tag, every repeating range with its even/odd restriction.
TEST(CompiledDataDictionary, HoldsExactlyWhatDcmtkReadsFromItsFiles) {
  DcmDataDictionary files(OFTrue, OFTrue);
  ASSERT_TRUE(files.isDictionaryLoaded());
  DcmDataDictionary compiled(OFTrue, OFFalse);
  AddCompiledDataDictionary(compiled);
  EXPECT_EQ(compiled.numberOfNormalTagEntries(), files.numberOfNormalTagEntries());
  EXPECT_EQ(compiled.numberOfRepeatingTagEntries(), files.numberOfRepeatingTagEntries());
  EXPECT_GT(files.numberOfEntries(), 7000);
  int compared = 0;
  for (auto it = files.normalBegin(); it != files.normalEnd(); ++it, ++compared) {
    const DcmDictEntry& want = **it;
    const DcmDictEntry* got = compiled.findEntry(want.getKey(), want.getPrivateCreator());
    ASSERT_NE(got, nullptr) << Describe(want);
    EXPECT_EQ(Describe(*got), Describe(want));
  }
  auto got = compiled.repeatingBegin();
  for (auto it = files.repeatingBegin(); it != files.repeatingEnd(); ++it, ++got, ++compared) {
    ASSERT_NE(got, compiled.repeatingEnd());
    EXPECT_EQ(Describe(**got), Describe(**it));  // same ranges, in DCMTK's own search order
  }
  EXPECT_EQ(compared, CompiledDataDictionarySize());
}

// Private tags resolve by their creator, as from the files: Siemens' CSA header is OB.
TEST(CompiledDataDictionary, ResolvesPrivateTagsByCreator) {
  DcmDataDictionary compiled(OFTrue, OFFalse);
  AddCompiledDataDictionary(compiled);
  const DcmDictEntry* csa = compiled.findEntry(DcmTagKey(0x0029, 0x1010), "SIEMENS CSA HEADER");
  ASSERT_NE(csa, nullptr);
  EXPECT_EQ(csa->getEVR(), EVR_OB);
  EXPECT_STREQ(csa->getTagName(), "CSAImageHeaderInfo");
  const DcmDictEntry* overlay = compiled.findEntry(DcmTagKey(0x6002, 0x3000), nullptr);
  ASSERT_NE(overlay, nullptr);  // (60xx,3000): a repeating group
  EXPECT_STREQ(overlay->getTagName(), "OverlayData");
}

// The rule editor's completion list: public keywords with their tags, each once, sorted; no
// private, retired or group-length entries.
TEST(DicomKeywords, ListsThePublicKeywordsOfTheLoadedDictionary) {
  UseCompiledDataDictionary();
  const auto keywords = DicomKeywords();
  EXPECT_GT(keywords.size(), 4000u);
  const auto find = [&](const std::string& name) {
    return std::find_if(keywords.begin(), keywords.end(), [&](const DicomKeyword& k) { return k.keyword == name; });
  };
  ASSERT_NE(find("Modality"), keywords.end());
  EXPECT_EQ(find("Modality")->tag, 0x00080060u);
  EXPECT_EQ(find("Modality")->vr, "CS");
  EXPECT_EQ(find("BodyPartExamined")->tag, 0x00180015u);
  EXPECT_EQ(find("CSAImageHeaderInfo"), keywords.end());
  for (size_t i = 1; i < keywords.size(); ++i) ASSERT_LT(keywords[i - 1].keyword, keywords[i].keyword);
  for (const auto& k : keywords) {
    ASSERT_EQ(k.keyword.rfind("RETIRED_", 0), std::string::npos) << k.keyword;
    ASSERT_NE(k.tag & 0xFFFFu, 0u) << k.keyword;
    ASSERT_EQ((k.tag >> 16) % 2, 0u) << k.keyword;
  }
}

}  // namespace
}  // namespace procnode
