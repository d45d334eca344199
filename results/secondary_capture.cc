#include "results/secondary_capture.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include "core/error.h"
#include "core/study.h"
#include "dicom/io.h"
#include "results/dicom_common.h"

namespace procnode {
namespace {

constexpr const char* kObject = "Secondary Capture";

void Put(DcmItem& item, const DcmTagKey& tag, const std::string& value) { PutAttribute(item, tag, value, kObject); }
void Check(const OFCondition& status, const char* what) { CheckDcmtk(status, kObject, what); }

}  // namespace

std::vector<std::string> MakeSecondaryCaptures(const SecondaryCaptureSpec& spec, const std::vector<ReportImage>& images) {
  if (spec.sop_instance_uids.size() != images.size()) throw Error(ErrorCode::kInternal, "Secondary Capture: one UID per image is needed");
  const DicomNow now = CurrentDicomDateTime();
  std::vector<std::string> objects;
  for (std::size_t k = 0; k < images.size(); ++k) {
    const ReportImage& image = images[k];
    if (image.width <= 0 || image.height <= 0 || image.width > 65535 || image.height > 65535 ||
        image.rgb.size() != static_cast<std::size_t>(image.width) * image.height * 3) {
      throw Error(ErrorCode::kInvalidInput, "Secondary Capture: key image " + std::to_string(k + 1) + " is empty or malformed");
    }
    DcmFileFormat file;
    DcmDataset& ds = *file.getDataset();
    // SOP Common (C.12.1); Patient (C.7.1.1) and General Study (C.7.2.1), copied from the source study
    PutStudyIdentity(ds, spec.study, kObject);
    Put(ds, DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    Put(ds, DCM_SOPInstanceUID, spec.sop_instance_uids[k]);
    Put(ds, DCM_InstanceCreationDate, now.date);
    Put(ds, DCM_InstanceCreationTime, now.time);
    // General Series (C.7.3.1)
    Put(ds, DCM_Modality, spec.modality.empty() ? "OT" : spec.modality);
    Put(ds, DCM_SeriesInstanceUID, spec.series_instance_uid);
    Put(ds, DCM_SeriesNumber, std::to_string(spec.series_number));
    Put(ds, DCM_SeriesDescription, spec.series_description);
    Put(ds, DCM_SeriesDate, now.date);
    Put(ds, DCM_SeriesTime, now.time);
    Check(ds.insertEmptyElement(DCM_Laterality), "Laterality");
    // General Equipment (C.7.5.1): the marker that keeps results from becoming inputs
    Put(ds, DCM_Manufacturer, kResultManufacturer);
    Put(ds, DCM_SoftwareVersions, spec.software_version);
    // SC Equipment (C.8.6.1): a workstation rendered it
    Put(ds, DCM_ConversionType, "WSD");
    // General Image (C.7.6.1)
    Put(ds, DCM_InstanceNumber, std::to_string(k + 1));
    Check(ds.insertEmptyElement(DCM_PatientOrientation), "PatientOrientation");
    Put(ds, DCM_ImageType, "DERIVED\\SECONDARY");
    Put(ds, DCM_ContentDate, now.date);
    Put(ds, DCM_ContentTime, now.time);
    Put(ds, DCM_ImageComments, image.caption.substr(0, 10240));
    if (!spec.legend.empty()) Put(ds, DCM_DerivationDescription, spec.legend.substr(0, 1024));
    Put(ds, DCM_BurnedInAnnotation, "NO");
    // SC Image (C.8.6.2)
    Put(ds, DCM_DateOfSecondaryCapture, now.date);
    Put(ds, DCM_TimeOfSecondaryCapture, now.time);
    // Image Pixel (C.7.6.3): 8-bit RGB, colour-by-pixel
    Check(ds.putAndInsertUint16(DCM_SamplesPerPixel, 3), "SamplesPerPixel");
    Put(ds, DCM_PhotometricInterpretation, "RGB");
    Check(ds.putAndInsertUint16(DCM_PlanarConfiguration, 0), "PlanarConfiguration");
    Check(ds.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(image.height)), "Rows");
    Check(ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(image.width)), "Columns");
    Check(ds.putAndInsertUint16(DCM_BitsAllocated, 8), "BitsAllocated");
    Check(ds.putAndInsertUint16(DCM_BitsStored, 8), "BitsStored");
    Check(ds.putAndInsertUint16(DCM_HighBit, 7), "HighBit");
    Check(ds.putAndInsertUint16(DCM_PixelRepresentation, 0), "PixelRepresentation");
    std::vector<Uint8> pixels(image.rgb.begin(), image.rgb.end());
    if (pixels.size() % 2 != 0) pixels.push_back(0);  // OB values have even length
    Check(ds.putAndInsertUint8Array(DCM_PixelData, pixels.data(), static_cast<unsigned long>(pixels.size())), "PixelData");
    objects.push_back(WriteDicomBuffer(file, "Secondary Capture " + spec.sop_instance_uids[k]));
  }
  return objects;
}

}  // namespace procnode
