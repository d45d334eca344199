#include "dicom/prefilter.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

#include "core/error.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "dicom/folder_source.h"
#include "dicom/private_tags.h"
#include "tests/support/shared_data.h"

namespace procnode {
namespace {

constexpr uint16_t kKeep[] = {0x0019, 0x0029, 0x2005};

// Every top-level element as tag -> its bytes, written in the dataset's own transfer syntax.
std::map<DcmTagKey, std::string> Elements(DcmDataset& ds) {
  std::map<DcmTagKey, std::string> out;
  const E_TransferSyntax xfer = ds.getOriginalXfer();
  for (unsigned long i = 0; i < ds.card(); ++i) {
    DcmElement* element = ds.getElement(i);
    DcmItem item;
    item.insert(dynamic_cast<DcmElement*>(element->clone()));
    const Uint32 length = item.calcElementLength(xfer, EET_ExplicitLength);
    std::string bytes(length + 16, '\0');
    DcmOutputBufferStream stream(bytes.data(), bytes.size());
    item.transferInit();
    EXPECT_TRUE(item.write(stream, xfer, EET_ExplicitLength, nullptr).good()) << element->getTag().toString().c_str();
    item.transferEnd();
    void* data = nullptr;
    offile_off_t written = 0;
    stream.flushBuffer(data, written);
    out[element->getTag()] = std::string(static_cast<const char*>(data), static_cast<std::size_t>(written));
  }
  return out;
}

// The filtered file holds exactly the original's public elements and kept private groups, equal
// value for value; every other private group is gone.
void ExpectOnlyUnneededPrivateGroupsGone(const std::string& original, const std::string& filtered, const std::string& name) {
  auto before = ReadDicomBuffer(original, name), after = ReadDicomBuffer(filtered, name);
  const auto want = Elements(*before->getDataset()), got = Elements(*after->getDataset());
  std::size_t dropped = 0;
  for (const auto& [tag, value] : want) {
    const bool keep = (tag.getGroup() & 1) == 0 || std::find(std::begin(kKeep), std::end(kKeep), tag.getGroup()) != std::end(kKeep);
    const auto it = got.find(tag);
    if (keep) {
      ASSERT_NE(it, got.end()) << name << ": " << tag.toString().c_str() << " lost";
      EXPECT_EQ(it->second, value) << name << ": " << tag.toString().c_str() << " changed";
    } else {
      EXPECT_EQ(it, got.end()) << name << ": " << tag.toString().c_str() << " kept";
      ++dropped;
    }
  }
  EXPECT_EQ(got.size() + dropped, want.size()) << name;
  // The meta header is untouched.
  EXPECT_EQ(original.substr(0, 132), filtered.substr(0, 132));
}

// The file as Part 10 bytes, sequences and items of undefined length.
std::string WithUndefinedLengths(DcmFileFormat& file, E_TransferSyntax xfer) {
  EXPECT_TRUE(file.validateMetaInfo(xfer).good());
  std::string buffer(1 << 16, '\0');
  DcmOutputBufferStream stream(buffer.data(), buffer.size());
  file.transferInit();
  EXPECT_TRUE(file.write(stream, xfer, EET_UndefinedLength, nullptr).good());
  file.transferEnd();
  void* data = nullptr;
  offile_off_t written = 0;
  stream.flushBuffer(data, written);
  return std::string(static_cast<const char*>(data), static_cast<std::size_t>(written));
}

TEST(WithoutPrivateGroups, CutsGeVendorGroupsAndKeepsEverythingElse) {
  const std::string folder = testing::SharedData() + "/dcm_qa_nih/In/20180918GE/mr_0004";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() != ".dcm" || ++files > 5) continue;
    const std::string bytes = ReadFileBytes(entry.path().string());
    const auto filtered = WithoutPrivateGroups(bytes, kKeep);
    ASSERT_TRUE(filtered.has_value()) << entry.path();
    EXPECT_LT(filtered->size(), bytes.size());
    ExpectOnlyUnneededPrivateGroupsGone(bytes, *filtered, entry.path().string());
  }
  EXPECT_GT(files, 0);
}

// With the conversion's table (dicom/private_tags.h): of the kept groups only the listed elements
// and the private creators remain, each equal to the original; public elements are untouched.
TEST(WithoutPrivateGroups, KeepsOnlyTheListedElementsOfTheKeptGroups) {
  const std::string folder = testing::SharedData() + "/dcm_qa_nih/In/20180918GE/mr_0004";
  const auto groups = PrivateGroupsRead();
  const auto elements = PrivateElementsRead();
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() != ".dcm" || ++files > 3) continue;
    const std::string bytes = ReadFileBytes(entry.path().string());
    const auto filtered = WithoutPrivateGroups(bytes, groups, elements);
    ASSERT_TRUE(filtered.has_value()) << entry.path();
    auto before = ReadDicomBuffer(bytes, "before"), after = ReadDicomBuffer(*filtered, "after");
    const auto want = Elements(*before->getDataset()), got = Elements(*after->getDataset());
    int kept_private = 0, creators = 0;
    for (const auto& [tag, value] : want) {
      const uint32_t key = static_cast<uint32_t>(tag.getGroup()) << 16 | tag.getElement();
      const bool in_group = std::find(groups.begin(), groups.end(), tag.getGroup()) != groups.end();
      const bool creator = (tag.getGroup() & 1) != 0 && tag.getElement() >= 0x0010 && tag.getElement() <= 0x00FF;
      const bool keep = (tag.getGroup() & 1) == 0 ||
                        (in_group && (creator || std::binary_search(elements.begin(), elements.end(), key)));
      const auto it = got.find(tag);
      if (keep) {
        ASSERT_NE(it, got.end()) << tag.toString().c_str() << " lost";
        EXPECT_EQ(it->second, value) << tag.toString().c_str() << " changed";
        kept_private += (tag.getGroup() & 1) != 0 && !creator;
        creators += creator && in_group;
      } else {
        EXPECT_EQ(it, got.end()) << tag.toString().c_str() << " kept";
      }
    }
    // The GE EPI's slice order, diffusion and timing attributes (0019,109C), (0043,1039), ... stay.
    EXPECT_GE(kept_private, 8) << entry.path();
    EXPECT_GE(creators, 3) << entry.path();
    EXPECT_NE(got.find(DcmTagKey(0x0019, 0x109C)), got.end());
    ASSERT_NE(want.find(DcmTagKey(0x0019, 0x100F)), want.end());
    EXPECT_EQ(got.find(DcmTagKey(0x0019, 0x100F)), got.end()) << "an unread GE element";
    EXPECT_EQ(got.find(DcmTagKey(0x0019, 0x0000)), got.end()) << "the group length, wrong once elements are cut";
  }
  EXPECT_GT(files, 0);
}

// A private sequence of undefined length (items of undefined length, a nested sequence) before
// public elements, in implicit and explicit VR: the walker finds its end, the public elements after
// it survive, and nothing of it remains.
TEST(WithoutPrivateGroups, SkipsUndefinedLengthPrivateSequencesInBothEncodings) {
  for (const E_TransferSyntax xfer : {EXS_LittleEndianImplicit, EXS_LittleEndianExplicit}) {
    DcmFileFormat file;
    DcmDataset& ds = *file.getDataset();
    ASSERT_TRUE(ds.putAndInsertString(DCM_SOPClassUID, UID_MRImageStorage).good());
    ASSERT_TRUE(ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4").good());
    ASSERT_TRUE(ds.putAndInsertString(DcmTag(0x0009, 0x0010, EVR_LO), "ACME 1.0").good());
    auto* sequence = new DcmSequenceOfItems(DcmTag(0x0009, 0x1001, EVR_SQ));
    auto* item = new DcmItem();
    item->putAndInsertString(DCM_PatientName, "NESTED^NAME");
    auto* inner = new DcmSequenceOfItems(DCM_ReferencedImageSequence);
    auto* inner_item = new DcmItem();
    inner_item->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.3.5");
    inner->insert(inner_item);
    item->insert(inner);
    sequence->insert(item);
    ASSERT_TRUE(ds.insert(sequence).good());
    ASSERT_TRUE(ds.putAndInsertString(DCM_PatientID, "AFTER").good());
    ASSERT_TRUE(ds.putAndInsertString(DcmTag(0x0019, 0x0010, EVR_LO), "KEPT 1.0").good());
    ASSERT_TRUE(ds.putAndInsertString(DcmTag(0x0019, 0x1001, EVR_LO), "kept value").good());
    ASSERT_TRUE(ds.putAndInsertString(DcmTag(0x0043, 0x0010, EVR_LO), "GEMS_PARM_01").good());
    ASSERT_TRUE(ds.putAndInsertUint16(DCM_Rows, 1).good());
    const std::string name = xfer == EXS_LittleEndianImplicit ? "implicit" : "explicit";
    const std::string bytes = WithUndefinedLengths(file, xfer);
    ASSERT_NE(bytes.find("NESTED^NAME"), std::string::npos) << name;

    const auto filtered = WithoutPrivateGroups(bytes, kKeep);
    ASSERT_TRUE(filtered.has_value()) << name;
    EXPECT_EQ(filtered->find("NESTED^NAME"), std::string::npos) << name;
    EXPECT_EQ(filtered->find("GEMS_PARM_01"), std::string::npos) << name;
    EXPECT_NE(filtered->find("kept value"), std::string::npos) << name;
    ExpectOnlyUnneededPrivateGroupsGone(bytes, *filtered, name);
  }
}

TEST(WithoutPrivateGroups, LeavesWhatItDoesNotWalkToDcmtk) {
  const std::string zoo = testing::SharedData() + "/debian-pydicom-test-files/";
  const std::string big_endian = ReadFileBytes(zoo + "MR_small_bigendian.dcm");
  EXPECT_FALSE(WithoutPrivateGroups(big_endian, kKeep).has_value());
  EXPECT_FALSE(WithoutPrivateGroups("not a DICOM file", kKeep).has_value());
  const std::string ge = ReadFileBytes(testing::SharedData() +
                                       "/dcm_qa_nih/In/20180918GE/mr_0004/axial_epi_fmri_interleaved_i_to_s-00001.dcm");
  EXPECT_FALSE(WithoutPrivateGroups(ge.substr(0, ge.size() / 2), kKeep).has_value()) << "truncated";
  auto no_private = ReadDicomBuffer(*WithoutPrivateGroups(ge, {}), "ge");
  EXPECT_EQ(no_private->getDataset()->card(),
            Elements(*no_private->getDataset()).size());
  EXPECT_FALSE(WithoutPrivateGroups(*WithoutPrivateGroups(ge, {}), {}).has_value()) << "nothing left to cut";
}

TEST(FirstLengthOverrun, NamesTheElementThatRunsPastTheEndAndOnlyBeforeTheStopTag) {
  const std::string ge = ReadFileBytes(testing::SharedData() +
                                       "/dcm_qa_nih/In/20180918GE/mr_0004/axial_epi_fmri_interleaved_i_to_s-00001.dcm");
  EXPECT_EQ(FirstLengthOverrun(ge), "");
  const std::string cut = ge.substr(0, ge.size() - 100);  // the pixel data loses its last 100 bytes
  const std::string said = FirstLengthOverrun(cut);
  EXPECT_EQ(said.rfind("element (7FE0,0010) at byte ", 0), 0u) << said;
  EXPECT_NE(said.find(" bytes, "), std::string::npos) << said;
  EXPECT_EQ(FirstLengthOverrun(cut, 0x0020000F), "") << "not read when parsing stops before the pixel data";
  try {
    ReadDicomBuffer(cut, "instance 7");
    FAIL() << "a truncated file was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("instance 7: not readable as DICOM (element (7FE0,0010) at byte"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("the file is truncated or corrupt"), std::string::npos) << e.what();
  }
  // A hostile 4 GiB claim early in the file is refused before DCMTK allocates anything for it.
  std::string hostile = ge;
  const std::size_t at = hostile.find(std::string("\x08\x00\x16\x00UI", 6));  // SOP Class UID: make it a UN of 4 GiB
  ASSERT_NE(at, std::string::npos);
  hostile.replace(at + 4, 4, std::string("UN\0\0", 4));
  hostile.insert(at + 8, std::string("\xF0\xFF\xFF\xFF", 4));
  EXPECT_NE(FirstLengthOverrun(hostile).find("element (0008,0016) at byte " + std::to_string(at) + " claims 4294967280 bytes"),
            std::string::npos) << FirstLengthOverrun(hostile);
  EXPECT_EQ(FirstLengthOverrun("not a DICOM file"), "");
}

// Every file of the malformed and transfer-syntax corpora: the walker never crashes, and what it
// returns parses exactly as the original does, minus the cut groups.
class PrefilterCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(PrefilterCorpus, CutsOnlyPrivateGroupsOrLeavesTheFileAlone) {
  const std::string path = GetParam();
  const std::string bytes = ReadFileBytes(path);
  const auto filtered = WithoutPrivateGroups(bytes, kKeep);
  if (!filtered) return;
  std::unique_ptr<DcmFileFormat> original;
  try {
    original = ReadDicomBuffer(bytes, path);
  } catch (const Error&) {
    EXPECT_THROW(ReadDicomBuffer(*filtered, path), Error) << "the original does not parse, the cut one must not either";
    return;
  }
  ExpectOnlyUnneededPrivateGroupsGone(bytes, *filtered, path);
}

// The corpus test above is not empty-handed: many of its files carry private groups to cut.
TEST(WithoutPrivateGroups, CutsPrivateGroupsOutOfManyCorpusFiles) {
  int cut = 0, files = 0;
  for (const auto& path : testing::CorpusFiles()) {
    ++files;
    if (WithoutPrivateGroups(ReadFileBytes(path), kKeep)) ++cut;
  }
  std::cout << cut << " of " << files << " corpus files had private groups cut\n";
  EXPECT_GE(cut, 10);
}

// TopLevelValues reads what DCMTK reads, or declines: every corpus file and a few of each scanner
// series in shared data.
constexpr uint32_t kGrouping[] = {0x00080060, 0x00080070, 0x0020000E, 0x00100010};

void ExpectValuesAsDcmtkReadsThem(const std::string& path, int& answered) {
  const std::string bytes = ReadFileBytes(path);
  const auto values = TopLevelValues(bytes, kGrouping);
  if (!values) return;
  std::unique_ptr<DcmFileFormat> parsed;
  try {
    parsed = ReadDicomBuffer(bytes, path);
  } catch (const Error&) {
    return;  // DCMTK refuses the file later on; the scan's reader may answer for its start
  }
  ++answered;
  for (const uint32_t tag : kGrouping) {
    const DcmTagKey key(static_cast<uint16_t>(tag >> 16), static_cast<uint16_t>(tag & 0xFFFF));
    const std::string expected = DicomString(*parsed->getDataset(), key);
    const auto it = values->find(tag);
    EXPECT_EQ(it == values->end() ? "" : it->second, expected) << path << " " << key.toString().c_str();
  }
}

TEST(TopLevelValues, AreWhatDcmtkReadsOrNothingForEveryCorpusFile) {
  int answered = 0;
  for (const auto& path : testing::CorpusFiles()) ExpectValuesAsDcmtkReadsThem(path, answered);
  std::cout << answered << " of " << testing::CorpusFiles().size() << " corpus files answered without DCMTK\n";
  EXPECT_GE(answered, 20) << "not empty-handed";
}

TEST(TopLevelValues, ReadTheGroupingAttributesOfScannerFiles) {
  int answered = 0, files = 0;
  for (const char* folder : {"/dcm_qa_nih/In/20180918GE/mr_0004", "/mr-brain-sag-mprage", "/ct-chest-lung-dx-a0001/lung-kernel",
                             "/dcm_qa_ct/In/GE"}) {
    int here = 0;
    for (const auto& entry : std::filesystem::directory_iterator(testing::SharedData() + folder)) {
      if (entry.path().extension() != ".dcm" || ++here > 4) continue;
      ++files;
      ExpectValuesAsDcmtkReadsThem(entry.path().string(), answered);
    }
  }
  EXPECT_GT(files, 8);
  EXPECT_EQ(answered, files) << "plain little-endian files: every one answered";
  EXPECT_FALSE(TopLevelValues("not a DICOM file", kGrouping).has_value());
}

// Cut anywhere, a file never makes the walker read past its end: it answers from what is there
// or declines. Once the cut falls after SeriesInstanceUID, the answer is the whole file's.
TEST(TopLevelValues, AFileCutAtEveryLengthIsAnsweredOrDeclined) {
  const std::string ge = ReadFileBytes(testing::SharedData() +
                                       "/dcm_qa_nih/In/20180918GE/mr_0004/axial_epi_fmri_interleaved_i_to_s-00001.dcm");
  const auto whole = TopLevelValues(ge, kGrouping);
  ASSERT_TRUE(whole.has_value());
  ASSERT_FALSE(whole->at(0x0020000E).empty());
  std::size_t answered = 0, complete = 0;
  for (std::size_t length = 0; length < ge.size(); ++length) {
    const std::string cut = ge.substr(0, length);  // its own allocation (memcheck sees a read past it)
    if (const auto values = TopLevelValues(cut, kGrouping)) {
      ++answered;
      if (values->contains(0x0020000E) && *values == *whole) ++complete;
    }
  }
  EXPECT_GT(answered, 0u);
  EXPECT_GT(complete, 0u) << "cuts after the last wanted element still give every value";
}

// LocateNativePixelData finds the bytes DCMTK reads as PixelData, or declines: every corpus file
// (the transfer-syntax zoo: encapsulated and big-endian ones decline) and scanner files.
void ExpectPixelsWhereDcmtkReadsThem(const std::string& path, int& located) {
  const std::string bytes = ReadFileBytes(path);
  const auto span = LocateNativePixelData(bytes);
  if (!span) return;
  std::unique_ptr<DcmFileFormat> parsed;
  try {
    parsed = ReadDicomBuffer(bytes, path);
  } catch (const Error&) {
    return;  // DCMTK refuses the file; the converter's reader reports that, not the locator
  }
  DcmElement* element = nullptr;
  ASSERT_TRUE(parsed->getDataset()->findAndGetElement(DCM_PixelData, element).good()) << path;
  ASSERT_FALSE(DcmXfer(parsed->getDataset()->getOriginalXfer()).isEncapsulated()) << path;
  Uint8* value = nullptr;
  ASSERT_TRUE(element->getUint8Array(value).good()) << path;
  ASSERT_EQ(element->getLength(), span->length) << path;
  ASSERT_LE(span->offset + span->length, bytes.size()) << path;
  EXPECT_EQ(std::memcmp(value, bytes.data() + span->offset, span->length), 0) << path;
  EXPECT_EQ(span->offset - span->element, DcmXfer(parsed->getDataset()->getOriginalXfer()).isExplicitVR() ? 12u : 8u);
  ++located;
}

TEST(LocateNativePixelData, FindsWhatDcmtkReadsOrDeclinesForEveryCorpusFile) {
  int located = 0;
  for (const auto& path : testing::CorpusFiles()) ExpectPixelsWhereDcmtkReadsThem(path, located);
  std::cout << located << " of " << testing::CorpusFiles().size() << " corpus files located\n";
  EXPECT_GE(located, 10) << "not empty-handed";
  int scanner = 0;
  for (const char* folder : {"/mr-brain-sag-mprage", "/ct-chest-lung-dx-a0001/lung-kernel", "/dcm_qa_nih/In/20180918GE/mr_0004"}) {
    int here = 0;
    for (const auto& entry : std::filesystem::directory_iterator(testing::SharedData() + folder)) {
      if (entry.path().extension() != ".dcm" || ++here > 3) continue;
      const int before = scanner;
      ExpectPixelsWhereDcmtkReadsThem(entry.path().string(), scanner);
      EXPECT_EQ(scanner, before + 1) << entry.path() << ": a native little-endian image is located";
    }
  }
}

// A head cut anywhere before the PixelData element declines; cut after its header, it locates.
TEST(LocateNativePixelData, AHeadCutShortDeclines) {
  const std::string ct = ReadFileBytes(testing::SharedData() + "/ct-chest-lung-dx-a0001/lung-kernel/" +
                                       std::filesystem::directory_iterator(testing::SharedData() +
                                                                           "/ct-chest-lung-dx-a0001/lung-kernel")
                                           ->path().filename().string());
  const auto whole = LocateNativePixelData(ct);
  ASSERT_TRUE(whole);
  for (std::size_t length = 0; length < whole->offset; length += 7) {
    EXPECT_FALSE(LocateNativePixelData(ct.substr(0, length))) << length;
  }
  const auto head = LocateNativePixelData(ct.substr(0, whole->offset));
  ASSERT_TRUE(head);
  EXPECT_EQ(head->offset, whole->offset);
  EXPECT_EQ(head->length, whole->length);
}

INSTANTIATE_TEST_SUITE_P(MalformedAndZoo, PrefilterCorpus, ::testing::ValuesIn(testing::CorpusFiles()),
                         [](const auto& info) { return testing::CorpusTestName(info.param, info.index); });

}  // namespace
}  // namespace procnode
