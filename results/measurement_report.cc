#include "results/measurement_report.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/cmr/tid1500.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "dicom/io.h"
#include "results/dicom_common.h"

namespace procnode {
namespace {

constexpr const char* kObject = "SR";

void Check(const OFCondition& status, const char* what) { CheckDcmtk(status, kObject, what); }

DSRCodedEntryValue Coded(const Code& code) {
  return DSRCodedEntryValue(code.value.c_str(), code.scheme.c_str(), code.meaning.c_str());
}

// The shortest text that reads back as `value`, within the 16 characters of a DS (PS3.5 6.2);
// the most digits that fit where none does.
std::string Number(double value) {
  char buffer[32];
  std::string fits;
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
    if (std::strlen(buffer) > 16) break;
    fits = buffer;
    if (std::strtod(buffer, nullptr) == value) break;
  }
  if (fits.empty()) std::snprintf(buffer, sizeof buffer, "%.8e", value), fits = buffer;
  return fits;
}

}  // namespace

std::string MakeMeasurementReport(const MeasurementReportSpec& spec) {
  if (spec.groups.empty()) throw Error(ErrorCode::kInvalidInput, "SR: no measurement groups");
  TID1500_MeasurementReport report(CMR_CID7021::ImagingMeasurementReport);
  Check(report.setLanguage(CID5000_Languages(DSRCodedEntryValue("en-US", "RFC5646", "English (United States)"))), "language");
  Check(report.getObservationContext().addDeviceObserver(spec.device_observer_uid.c_str(), spec.device_observer_name.c_str(),
                                                         kResultManufacturer, spec.processor_name.c_str()),
        "device observer");
  Check(report.addProcedureReported(DSRCodedEntryValue("363679005", "SCT", "Imaging procedure")), "procedure reported");
  Check(report.getImageLibrary().createNewImageLibrary(), "image library");
  Check(report.getImageLibrary().addImageGroup(), "image group");
  for (const auto& source : spec.sources) {
    DcmItem entry;
    PutAttribute(entry, DCM_Modality, spec.modality_of_sources, kObject);
    PutAttribute(entry, DCM_SOPClassUID, source.sop_class_uid, kObject);
    PutAttribute(entry, DCM_SOPInstanceUID, source.sop_instance_uid, kObject);
    Check(report.getImageLibrary().addImageEntry(entry, TID1600_ImageLibrary::withoutDescriptors), "image library entry");
  }
  for (const auto& group : spec.groups) {
    Check(report.addVolumetricROIMeasurements(), "measurement group");
    auto& m = report.getVolumetricROIMeasurements();
    Check(m.setTrackingIdentifier(group.tracking_id.c_str()), "tracking identifier");
    Check(m.setTrackingUniqueIdentifier(group.tracking_uid.c_str()), "tracking UID");
    Check(m.setFinding(Coded(group.finding)), "finding");
    if (group.finding_site) Check(m.addFindingSite(Coded(*group.finding_site)), "finding site");
    DSRImageReferenceValue segment(UID_SegmentationStorage, spec.segmentation_sop_instance_uid.c_str());
    segment.getSegmentList().addItem(static_cast<Uint16>(group.segment_number));
    Check(m.setReferencedSegment(segment), "referenced segment");
    Check(m.setSourceSeriesForSegmentation(spec.source_series_instance_uid.c_str()), "source series");
    for (const auto& measurement : group.measurements) {
      const CMR_TID1411_in_TID1500::MeasurementValue value(Number(measurement.value).c_str(), Coded(measurement.unit));
      Check(m.addMeasurement(Coded(measurement.concept_name), value), "measurement");
      if (measurement.derivation) Check(m.getMeasurement().setDerivation(Coded(*measurement.derivation)), "derivation");
      Check(m.getMeasurement().setAlgorithmIdentification(spec.processor_name.c_str(), spec.software_version.c_str()),
            "algorithm identification");
    }
  }
  if (!report.isValid()) throw Error(ErrorCode::kInternal, "SR: the TID 1500 report is incomplete");

  DSRDocument doc;
  Check(doc.setTreeFromRootTemplate(report, OFTrue), "document tree");
  Check(doc.getCodingSchemeIdentification().addItem(kPrivateCodingScheme, "", "procnode measurements", "procnode"),
        "coding scheme identification");
  Check(doc.setManufacturer(kResultManufacturer), "Manufacturer");
  Check(doc.setManufacturerModelName(spec.processor_name.c_str()), "ManufacturerModelName");
  Check(doc.setSoftwareVersions(spec.software_version.c_str()), "SoftwareVersions");
  Check(doc.setSeriesDescription(spec.series_description.c_str()), "SeriesDescription");
  Check(doc.setSeriesNumber(std::to_string(spec.series_number).c_str()), "SeriesNumber");
  Check(doc.completeDocument(), "completion flag");
  // Evidence: the source images and the segmentation.
  for (const auto& source : spec.sources) {
    Check(doc.getCurrentRequestedProcedureEvidence().addItem(spec.study.study_instance_uid.c_str(),
                                                             spec.source_series_instance_uid.c_str(),
                                                             source.sop_class_uid.c_str(), source.sop_instance_uid.c_str()),
          "evidence");
  }
  Check(doc.getCurrentRequestedProcedureEvidence().addItem(spec.study.study_instance_uid.c_str(),
                                                           spec.segmentation_series_instance_uid.c_str(),
                                                           UID_SegmentationStorage, spec.segmentation_sop_instance_uid.c_str()),
        "evidence");
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  Check(doc.write(ds), "write");
  // Patient, study and the deterministic UIDs.
  PutStudyIdentity(ds, spec.study, kObject);
  PutAttribute(ds, DCM_SeriesInstanceUID, spec.series_instance_uid, kObject);
  PutAttribute(ds, DCM_SOPInstanceUID, spec.sop_instance_uid, kObject);
  return WriteDicomBuffer(file, "SR");
}

}  // namespace procnode
