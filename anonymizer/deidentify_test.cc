// De-identification on a real chest CT slice with synthetic PHI planted in every category of the
// Basic Profile (names in nested sequences, private attributes, free text, SR-style text, dates,
// UIDs and references, device and institution, overlays and curves), judged by the leak checker.
#include "anonymizer/deidentify.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcvris.h>
#include <dcmtk/dcmdata/dcvrlo.h>
#include <dcmtk/dcmdata/dcvrobow.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "anonymizer/leak_checker.h"
#include "anonymizer/profile_table.h"
#include "anonymizer/pseudonym.h"
#include "core/error.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "tests/support/shared_data.h"

namespace procnode {
namespace {

const std::string kChest = std::string(PROCNODE_SHARED_DATA) + "/ct-chest-lung-dx-a0001/lung-kernel";
const std::vector<std::string> kPlanted{"DOE^JOHN^QUINCY", "DOE", "JOHN", "QUINCY", "MRN-884422", "19650312",
                                        "1965-03-12", "12.03.1965", "ALT-7731", "HOUSE", "GREGORY", "CUDDY",
                                        "WILSONIA", "ACC-55501", "Princeton Plainsboro", "555-0199"};

std::string FirstCtFile(int index = 0) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(kChest)) {
    if (e.path().filename() != "LICENSE") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files.at(index);
}

// Private tags have no dictionary VR: insert with an explicit one.
void PutPrivate(DcmItem& item, uint16_t group, uint16_t element, DcmEVR vr, const char* value) {
  DcmTag tag(group, element);
  tag.setVR(DcmVR(vr));
  DcmElement* el = vr == EVR_OB   ? static_cast<DcmElement*>(new DcmOtherByteOtherWord(tag))
                   : vr == EVR_IS ? static_cast<DcmElement*>(new DcmIntegerString(tag))
                                  : static_cast<DcmElement*>(new DcmLongString(tag));
  if (vr == EVR_OB) {
    ASSERT_TRUE(el->putUint8Array(reinterpret_cast<const Uint8*>(value), static_cast<unsigned long>(strlen(value))).good());
  } else {
    ASSERT_TRUE(el->putString(value).good());
  }
  ASSERT_TRUE(item.insert(el, true).good());
}

// A chest CT slice with PHI planted everywhere the profile must reach.
std::unique_ptr<DcmFileFormat> PlantedCt(int index = 0) {
  auto file = ReadDicomFile(FirstCtFile(index), "ct");
  DcmDataset& ds = *file->getDataset();
  ds.putAndInsertString(DCM_PatientName, "DOE^JOHN^QUINCY");
  ds.putAndInsertString(DCM_PatientID, "MRN-884422");
  ds.putAndInsertString(DCM_PatientBirthDate, "19650312");
  ds.putAndInsertString(DCM_PatientSex, "M");
  ds.putAndInsertString(DCM_PatientAge, "054Y");
  ds.putAndInsertString(DCM_PatientWeight, "81");
  ds.putAndInsertString(DCM_AccessionNumber, "ACC-55501");
  ds.putAndInsertString(DCM_ReferringPhysicianName, "HOUSE^GREGORY");
  ds.putAndInsertString(DCM_PerformingPhysicianName, "CUDDY^LISA");
  ds.putAndInsertString(DCM_InstitutionName, "Princeton Plainsboro");
  ds.putAndInsertString(DCM_PatientTelephoneNumbers, "555-0199");
  ds.putAndInsertString(DCM_DeviceSerialNumber, "SN-4711");
  ds.putAndInsertString(DCM_StationName, "CTROOM3");
  ds.putAndInsertString(DCM_StudyDate, "20200115");
  ds.putAndInsertString(DCM_SeriesDate, "20200115");
  ds.putAndInsertString(DCM_AcquisitionDateTime, "20200115101500");
  ds.putAndInsertString(DCM_StudyDescription, "CT chest for DOE");
  ds.putAndInsertString(DCM_ImageComments, "John Doe MRN-884422 born 1965-03-12, call 555-0199");
  DcmItem* other = nullptr;
  ds.findOrCreateSequenceItem(DcmTagKey(0x0010, 0x1002), other, -2);  // OtherPatientIDsSequence
  other->putAndInsertString(DCM_PatientID, "ALT-7731");
  other->putAndInsertString(DCM_IssuerOfPatientID, "Princeton Plainsboro");
  DcmItem* request = nullptr;
  ds.findOrCreateSequenceItem(DCM_RequestAttributesSequence, request, -2);
  request->putAndInsertString(DCM_AccessionNumber, "ACC-55501");
  request->putAndInsertString(DCM_RequestedProcedureDescription, "chest CT, JOHN DOE");
  // A reference to itself, to check that references follow the remapped UIDs.
  DcmItem* referenced = nullptr;
  ds.findOrCreateSequenceItem(DCM_ReferencedImageSequence, referenced, -2);
  referenced->putAndInsertString(DCM_ReferencedSOPClassUID, DicomString(ds, DCM_SOPClassUID).c_str());
  referenced->putAndInsertString(DCM_ReferencedSOPInstanceUID, DicomString(ds, DCM_SOPInstanceUID).c_str());
  // SR-style content: a name in a nested text item and in a person-name item.
  DcmItem* content = nullptr;
  ds.findOrCreateSequenceItem(DCM_ContentSequence, content, -2);
  content->putAndInsertString(DCM_ValueType, "TEXT");
  content->putAndInsertString(DCM_TextValue, "Dr WILSONIA reviewed with Gregory House");
  DcmItem* person = nullptr;
  ds.findOrCreateSequenceItem(DCM_ContentSequence, person, -2);
  person->putAndInsertString(DCM_ValueType, "PNAME");
  person->putAndInsertString(DCM_PersonName, "WILSONIA^JAMES");
  // Private attributes: one with a name, one the safe-private dictionary knows.
  ds.putAndInsertString(DcmTagKey(0x0011, 0x0010), "ACME HOSPITAL");
  PutPrivate(ds, 0x0011, 0x1001, EVR_LO, "DOE^JOHN");
  PutPrivate(ds, 0x0011, 0x1002, EVR_OB, "ID MRN-884422 in a blob");
  ds.putAndInsertString(DcmTagKey(0x0019, 0x0010), "SIEMENS MR HEADER");
  PutPrivate(ds, 0x0019, 0x100C, EVR_IS, "1000");
  // An overlay and a curve.
  ds.putAndInsertUint16(DcmTagKey(0x6000, 0x0010), 512);
  ds.putAndInsertUint16(DcmTagKey(0x6000, 0x0011), 512);
  ds.putAndInsertString(DcmTagKey(0x6000, 0x0022), "DOE JOHN");
  ds.putAndInsertString(DcmTagKey(0x5000, 0x2500), "JOHN DOE curve");
  return file;
}

DeidentifyOptions Project(const std::string& name = "lung-study") {
  DeidentifyOptions o;
  o.project = name;
  o.secret = "test secret, never in a log";
  return o;
}

// Deidentifies, writes, reads back: what would leave the node.
std::unique_ptr<DcmFileFormat> RoundTrip(DcmFileFormat& file, const DeidentifyOptions& o, DeidentifyOutcome* outcome = nullptr) {
  const auto result = Deidentify(file, o, "test object");
  if (outcome) *outcome = result;
  return ReadDicomBuffer(WriteDeidentified(file, "test object"), "written");
}

TEST(ProfileTable, IsTheWholeTableWithItsEdition) {
  const auto& table = ProfileTable();
  EXPECT_GE(table.exact.size(), 450u);
  EXPECT_EQ(table.edition, "innolitics-0d01bf1");
  EXPECT_EQ(FindProfileEntry(0x0010, 0x0010)->basic, "Z");
  EXPECT_EQ(FindProfileEntry(0x0008, 0x0018)->basic, "U");
  EXPECT_EQ(FindProfileEntry(0x0008, 0x1140)->basic, "X/Z/U*");
  EXPECT_EQ(FindProfileEntry(0x0011, 0x1001)->name, "Private attributes");
  EXPECT_EQ(FindProfileEntry(0x5002, 0x3000)->name, "Curve Data");
  EXPECT_EQ(FindProfileEntry(0x6002, 0x3000)->name, "Overlay Data");
  EXPECT_EQ(FindProfileEntry(0x0028, 0x0010), nullptr);  // Rows: not in the table, kept
  EXPECT_EQ(FindProfileEntry(0x0008, 0x0020)->options.at(ProfileOption::kRetainLongitudinalModifiedDates), "C");
}

TEST(Deidentify, ThePlantedPhiIsGoneEverywhereAndTheObjectIsMarked) {
  auto file = PlantedCt();
  const std::string original_sop = DicomString(*file->getDataset(), DCM_SOPInstanceUID);
  const std::string original_study = DicomString(*file->getDataset(), DCM_StudyInstanceUID);
  const Uint8* before = nullptr;
  file->getDataset()->findAndGetUint8Array(DCM_PixelData, before);
  const std::vector<Uint8> pixels_before(before, before + 512 * 512 * 2);
  DeidentifyOutcome outcome;
  auto out = RoundTrip(*file, Project(), &outcome);
  DcmDataset& ds = *out->getDataset();

  // The leak checker finds none of the planted terms, anywhere.
  const auto hits = ScanDataset(ds, kPlanted, "output");
  for (const auto& hit : hits) ADD_FAILURE() << "leak: term #" << hit.term << " at " << hit.where;
  EXPECT_TRUE(hits.empty());
  // ... while it does find them in the input (positive control), naming places, not values.
  auto planted = PlantedCt();
  const auto control = ScanDataset(*planted->getDataset(), kPlanted, "input");
  EXPECT_GE(control.size(), 15u);
  for (const auto& hit : control) EXPECT_EQ(hit.where.find("DOE"), std::string::npos) << hit.where;

  // Identity kept for the vault; pseudonym in its place.
  EXPECT_EQ(outcome.identity.patient_name, "DOE^JOHN^QUINCY");
  EXPECT_EQ(outcome.identity.patient_id, "MRN-884422");
  EXPECT_EQ(DicomString(ds, DCM_PatientID), outcome.pseudonym);
  EXPECT_EQ(DicomString(ds, DCM_PatientName), outcome.pseudonym);
  EXPECT_EQ(outcome.pseudonym.rfind("PN", 0), 0u);
  // Marks (PS3.15 E.1.1 and CID 7050).
  EXPECT_EQ(DicomString(ds, DCM_PatientIdentityRemoved), "YES");
  EXPECT_NE(DicomString(ds, DCM_DeidentificationMethod).find("innolitics-0d01bf1"), std::string::npos);
  DcmItem* code = nullptr;
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_DeidentificationMethodCodeSequence, code, 0).good());
  EXPECT_EQ(DicomString(*code, DCM_CodeValue), "113100");
  EXPECT_EQ(DicomString(ds, DCM_LongitudinalTemporalInformationModified), "REMOVED");
  // UIDs remapped, consistently, references and meta header included.
  const std::string sop = DicomString(ds, DCM_SOPInstanceUID);
  EXPECT_EQ(sop, RemapUid("test secret, never in a log", "lung-study", original_sop));
  EXPECT_EQ(DicomString(ds, DCM_StudyInstanceUID), RemapUid("test secret, never in a log", "lung-study", original_study));
  DcmItem* referenced = nullptr;  // the planted self-reference is the sequence's last item
  ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_ReferencedImageSequence, referenced, -1).good());
  EXPECT_EQ(DicomString(*referenced, DCM_ReferencedSOPInstanceUID), sop);
  EXPECT_EQ(DicomString(*out->getMetaInfo(), DCM_MediaStorageSOPInstanceUID), sop);
  EXPECT_EQ(outcome.uid_map.at(original_sop), sop);
  // Removed or emptied as the table says; pixels untouched.
  ASSERT_TRUE(planted->getDataset()->tagExists(DcmTagKey(0x0011, 0x1001)));
  EXPECT_FALSE(ds.tagExists(DcmTagKey(0x0011, 0x1001)));
  EXPECT_FALSE(ds.tagExists(DcmTagKey(0x0011, 0x1002)));
  EXPECT_FALSE(ds.tagExists(DcmTagKey(0x0011, 0x0010)));
  EXPECT_FALSE(ds.tagExists(DcmTagKey(0x0019, 0x100C)));
  EXPECT_FALSE(ds.tagExists(DcmTagKey(0x6000, 0x0010)));
  EXPECT_FALSE(ds.tagExists(DcmTagKey(0x5000, 0x2500)));
  EXPECT_FALSE(ds.tagExists(DCM_DeviceSerialNumber) && !DicomString(ds, DCM_DeviceSerialNumber).empty() &&
               DicomString(ds, DCM_DeviceSerialNumber) != "ANONYMIZED");
  EXPECT_FALSE(ds.tagExists(DCM_ImageComments));
  EXPECT_FALSE(ds.tagExists(DCM_PatientAge));
  EXPECT_EQ(DicomString(ds, DCM_StudyDate), "");
  EXPECT_EQ(DicomString(ds, DCM_PatientBirthDate), "");
  const Uint8* after = nullptr;
  ds.findAndGetUint8Array(DCM_PixelData, after);
  EXPECT_TRUE(std::equal(pixels_before.begin(), pixels_before.end(), after));
}

TEST(Deidentify, PseudonymsAndUidsAreStableForAPatientWithinAProjectOnly) {
  auto a = PlantedCt(0), b = PlantedCt(1), c = PlantedCt(0);
  DeidentifyOutcome oa, ob, oc;
  auto ra = RoundTrip(*a, Project(), &oa);
  auto rb = RoundTrip(*b, Project(), &ob);
  auto rc = RoundTrip(*c, Project("another-project"), &oc);
  EXPECT_EQ(oa.pseudonym, ob.pseudonym);
  EXPECT_NE(oa.pseudonym, oc.pseudonym);
  EXPECT_EQ(DicomString(*ra->getDataset(), DCM_StudyInstanceUID), DicomString(*rb->getDataset(), DCM_StudyInstanceUID));
  EXPECT_EQ(DicomString(*ra->getDataset(), DCM_SeriesInstanceUID), DicomString(*rb->getDataset(), DCM_SeriesInstanceUID));
  EXPECT_NE(DicomString(*ra->getDataset(), DCM_SOPInstanceUID), DicomString(*rb->getDataset(), DCM_SOPInstanceUID));
  EXPECT_NE(DicomString(*ra->getDataset(), DCM_StudyInstanceUID), DicomString(*rc->getDataset(), DCM_StudyInstanceUID));
}

TEST(Deidentify, EveryOptionChangesWhatTheTableSaysItChanges) {
  DeidentifyOptions o = Project();
  ApplyOptionNames("retain-uids,modified-dates,retain-device-identity,retain-institution-identity,"
                   "retain-patient-characteristics,retain-safe-private,clean-descriptors",
                   o);
  auto file = PlantedCt();
  const std::string original_sop = DicomString(*file->getDataset(), DCM_SOPInstanceUID);
  DeidentifyOutcome outcome;
  auto out = RoundTrip(*file, o, &outcome);
  DcmDataset& ds = *out->getDataset();
  EXPECT_EQ(DicomString(ds, DCM_SOPInstanceUID), original_sop);                      // Retain UIDs
  EXPECT_GT(outcome.date_shift_days, 0);                                      // Modified Dates
  EXPECT_EQ(DicomString(ds, DCM_LongitudinalTemporalInformationModified), "MODIFIED");
  EXPECT_NE(DicomString(ds, DCM_StudyDate), "20200115");
  EXPECT_EQ(DicomString(ds, DCM_StudyDate).size(), 8u);
  EXPECT_EQ(DicomString(ds, DCM_AcquisitionDateTime).substr(8), "101500");            // time of day kept
  EXPECT_EQ(DicomString(ds, DCM_DeviceSerialNumber), "SN-4711");                      // Retain Device Identity
  EXPECT_EQ(DicomString(ds, DCM_StationName), "CTROOM3");
  EXPECT_EQ(DicomString(ds, DCM_PatientSex), "M");                                    // Retain Patient Characteristics
  EXPECT_EQ(DicomString(ds, DCM_PatientAge), "054Y");
  // Retain Safe Private (read back as UN: the CT is implicit VR, where private VRs are not written).
  EXPECT_TRUE(DicomString(ds, DcmTagKey(0x0019, 0x100C)) == "1000" || DicomString(ds, DcmTagKey(0x0019, 0x100C)) == "31\\30\\30\\30")
      << DicomString(ds, DcmTagKey(0x0019, 0x100C));
  EXPECT_TRUE(ds.tagExists(DcmTagKey(0x0019, 0x0010)));
  EXPECT_FALSE(ds.tagExists(DcmTagKey(0x0011, 0x1001)));                      // ... but not ACME's name
  EXPECT_EQ(DicomString(ds, DCM_StudyDescription), "CT chest for ***");               // Clean Descriptors
  EXPECT_EQ(DicomString(ds, DCM_ImageComments).find("MRN-884422"), std::string::npos);
  // Retain Institution Identity keeps the institution; the person names still go.
  EXPECT_EQ(DicomString(ds, DCM_InstitutionName), "Princeton Plainsboro");
  const std::vector<std::string> people{"DOE", "JOHN", "MRN-884422", "HOUSE", "CUDDY", "WILSONIA", "ALT-7731", "1965-03-12"};
  EXPECT_TRUE(ScanDataset(ds, people, "output").empty());
  std::vector<std::string> codes;
  for (unsigned long i = 0;; ++i) {
    DcmItem* item = nullptr;
    if (ds.findAndGetSequenceItem(DCM_DeidentificationMethodCodeSequence, item, static_cast<signed long>(i)).bad()) break;
    codes.push_back(DicomString(*item, DCM_CodeValue));
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"113100", "113105", "113107", "113108", "113109", "113110", "113111", "113112"}));
  // The same patient's next image shifts by the same number of days.
  auto second = PlantedCt(1);
  DeidentifyOutcome second_outcome;
  RoundTrip(*second, o, &second_outcome);
  EXPECT_EQ(second_outcome.date_shift_days, outcome.date_shift_days);
  EXPECT_THROW(ApplyOptionNames("retain-everything", o), Error);
}

TEST(Deidentify, BurnedInAnnotationIsRefusedUnlessACleaningRuleBlanksIt) {
  auto file = PlantedCt();
  file->getDataset()->putAndInsertString(DCM_BurnedInAnnotation, "YES");
  try {
    Deidentify(*file, Project(), "slice 1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("slice 1: BurnedInAnnotation is YES"), std::string::npos) << e.what();
  }
  DeidentifyOptions o = Project();
  o.pixel_rules.push_back({"", "", 512, 512, {{0, 0, 99, 19}}});
  auto out = RoundTrip(*file, o);
  const Uint16* pixels = nullptr;
  out->getDataset()->findAndGetUint16Array(DCM_PixelData, pixels);
  for (int y = 0; y < 20; ++y) {
    for (int x = 0; x < 100; ++x) ASSERT_EQ(pixels[y * 512 + x], 0) << x << "," << y;
  }
  EXPECT_EQ(DicomString(*out->getDataset(), DCM_BurnedInAnnotation), "NO");
}

TEST(Deidentify, AThreeDimensionalHeadVolumeIsRefusedUnlessTheProjectAllowsIt) {
  std::string mr;
  for (const auto& e : std::filesystem::directory_iterator(std::string(PROCNODE_SHARED_DATA) + "/mr-brain-sag-mprage")) {
    if (e.path().filename() != "LICENSE") mr = e.path().string();
  }
  auto file = ReadDicomFile(mr, "mr");
  file->getDataset()->putAndInsertString(DCM_BodyPartExamined, "HEAD");
  file->getDataset()->putAndInsertString(DCM_MRAcquisitionType, "3D");
  EXPECT_THROW(Deidentify(*file, Project(), "mr"), Error);
  DeidentifyOptions o = Project();
  ApplyOptionNames("allow-recognizable-features", o);
  EXPECT_NO_THROW(Deidentify(*file, o, "mr"));
}

}  // namespace
}  // namespace procnode

namespace procnode {
namespace {

// Every file of the malformed and transfer-syntax corpora: de-identified and written with nothing
// of its identity left, or refused with an error naming the file; never a crash.
class AnonymizerCorpus : public ::testing::TestWithParam<std::string> {};

TEST_P(AnonymizerCorpus, DeidentifiesOrRefusesByName) {
  const std::string& path = GetParam();
  std::unique_ptr<DcmFileFormat> file;
  try {
    file = ReadDicomFile(path, path);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    return;  // not DICOM enough to read: the reader's own corpus test judges the message
  }
  DeidentifyOptions o;
  o.project = "corpus";
  o.secret = "corpus secret";
  o.allow_recognizable_visual_features = true;
  try {
    const auto outcome = Deidentify(*file, o, path);
    const std::string bytes = WriteDeidentified(*file, path);
    auto back = ReadDicomBuffer(bytes, "output");
    const auto hits = ScanDataset(*back->getDataset(), PhiTerms(outcome.identity, outcome.phi_terms), "output");
    for (const auto& hit : hits) ADD_FAILURE() << path << ": PHI term #" << hit.term << " left at " << hit.where;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(SharedCorpus, AnonymizerCorpus, ::testing::ValuesIn(procnode::testing::CorpusFiles()),
                         [](const auto& info) { return procnode::testing::CorpusTestName(info.param, info.index); });

// Issue 20: Clean Pixel Data never writes past pixel data shorter than its attributes say (it was
// dereferenced without a check); the object is refused, naming it.
TEST(Deidentify, CleanPixelDataRefusesPixelDataShorterThanDeclared) {
  auto file = PlantedCt();
  DcmDataset& ds = *file->getDataset();
  ds.putAndInsertString(DCM_BurnedInAnnotation, "YES");
  std::vector<Uint16> few(512 * 10, 7);  // ten rows of a 512 x 512 image
  ASSERT_TRUE(ds.putAndInsertUint16Array(DCM_PixelData, few.data(), static_cast<unsigned long>(few.size())).good());
  DeidentifyOptions o = Project();
  o.pixel_rules.push_back({"", "", 512, 512, {{0, 0, 99, 400}}});
  try {
    Deidentify(*file, o, "short slice");
    FAIL() << "cleaned past the end of the pixel data";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("short slice: Clean Pixel Data refused"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace procnode
