#include "dicom/element_index.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include "dicom/image.h"
#include "dicom/io.h"
#include "tests/support/shared_data.h"

namespace procnode {
namespace {

const std::string kFile = std::string(PROCNODE_SHARED_DATA) + "/debian-pydicom-test-files/MR_small.dcm";

DcmElement* DcmtkSearch(DcmItem& item, const DcmTagKey& tag) {
  DcmElement* found = nullptr;
  return item.findAndGetElement(tag, found).good() ? found : nullptr;
}

// Every top-level element, and tags that are absent (before the first, between two, past the
// last), are found as DCMTK's own search finds them, with and without the index.
TEST(ScopedElementIndex, FindsWhatDcmtkFinds) {
  auto file = ReadDicomFile(kFile, "MR_small");
  DcmDataset& ds = *file->getDataset();
  std::vector<DcmTagKey> tags{DcmTagKey(0x0000, 0x0001), DcmTagKey(0x0009, 0x0010), DcmTagKey(0x0028, 0x0009),
                              DcmTagKey(0x7FE0, 0x0011), DcmTagKey(0xFFFF, 0xFFFF)};
  for (unsigned long i = 0; i < ds.card(); ++i) tags.push_back(ds.getElement(i)->getTag());
  ASSERT_GT(ds.card(), 20u);
  for (const auto& tag : tags) EXPECT_EQ(FindElement(ds, tag), DcmtkSearch(ds, tag)) << tag.toString();
  {
    const ScopedElementIndex index(ds);
    for (const auto& tag : tags) EXPECT_EQ(FindElement(ds, tag), DcmtkSearch(ds, tag)) << tag.toString() << " indexed";
    EXPECT_EQ(DicomString(ds, DCM_Modality), "MR");
    EXPECT_EQ(DicomNumber(ds, DCM_ImagePositionPatient, 2), DicomNumber(ds, 0x0020, 0x0032, 2));
    EXPECT_TRUE(AttributeNumbers(ds, DcmTagKey(0x0018, 0x9999), 1, Raw::kText).empty()) << "absent";
  }
  EXPECT_EQ(FindElement(ds, DCM_Modality), DcmtkSearch(ds, DCM_Modality)) << "after the scope";
}

// Scopes nest; another dataset than the indexed one is searched by DCMTK; each thread has its own.
TEST(ScopedElementIndex, NestsAndKeepsToItsDatasetAndThread) {
  auto a = ReadDicomFile(kFile, "a");
  auto b = ReadDicomFile(kFile, "b");
  DcmDataset& da = *a->getDataset();
  DcmDataset& db = *b->getDataset();
  const ScopedElementIndex outer(da);
  EXPECT_EQ(FindElement(db, DCM_Rows), DcmtkSearch(db, DCM_Rows));
  EXPECT_NE(FindElement(db, DCM_Rows), FindElement(da, DCM_Rows));
  {
    const ScopedElementIndex inner(db);
    EXPECT_EQ(FindElement(da, DCM_Rows), DcmtkSearch(da, DCM_Rows)) << "the outer index still answers";
    EXPECT_EQ(FindElement(db, DCM_Rows), DcmtkSearch(db, DCM_Rows));
  }
  std::thread other([&] { EXPECT_EQ(FindElement(da, DCM_Columns), DcmtkSearch(da, DCM_Columns)); });
  other.join();
}

}  // namespace
}  // namespace procnode
