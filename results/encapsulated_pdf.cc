#include "results/encapsulated_pdf.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/ofstd/ofdatime.h>

#include "core/error.h"
#include "core/study.h"
#include "dicom/io.h"
#include "results/dicom_common.h"

namespace procnode {
namespace {

constexpr const char* kObject = "Encapsulated PDF";

void Put(DcmItem& item, const DcmTagKey& tag, const std::string& value) { PutAttribute(item, tag, value, kObject); }
void Check(const OFCondition& status, const char* what) { CheckDcmtk(status, kObject, what); }

}  // namespace

std::string MakeEncapsulatedPdf(const EncapsulatedPdfSpec& spec) {
  if (spec.pdf.size() < 5 || spec.pdf.compare(0, 5, "%PDF-") != 0) {
    throw Error(ErrorCode::kInternal, "Encapsulated PDF: the document is not a PDF");
  }
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  const StudyIdentity& study = spec.study;

  const DicomNow now = CurrentDicomDateTime();
  const std::string& date = now.date;
  const std::string& time = now.time;

  // SOP Common (C.12.1); Patient (C.7.1.1) and General Study (C.7.2.1), copied from the source study
  PutStudyIdentity(ds, study, kObject);
  Put(ds, DCM_SOPClassUID, UID_EncapsulatedPDFStorage);
  Put(ds, DCM_SOPInstanceUID, spec.sop_instance_uid);
  Put(ds, DCM_InstanceCreationDate, date);
  Put(ds, DCM_InstanceCreationTime, time);
  // Encapsulated Document Series (C.24.1)
  Put(ds, DCM_Modality, "DOC");
  Put(ds, DCM_SeriesInstanceUID, spec.series_instance_uid);
  Put(ds, DCM_SeriesNumber, std::to_string(spec.series_number));
  Put(ds, DCM_SeriesDescription, spec.series_description);
  // General Equipment (C.7.5.1): the marker that keeps results from becoming inputs
  Put(ds, DCM_Manufacturer, kResultManufacturer);
  Put(ds, DCM_SoftwareVersions, spec.software_version);
  // SC Equipment (C.8.6.1)
  Put(ds, DCM_ConversionType, "WSD");
  // Encapsulated Document (C.24.2)
  Put(ds, DCM_InstanceNumber, "1");
  Put(ds, DCM_ContentDate, date);
  Put(ds, DCM_ContentTime, time);
  Put(ds, DCM_AcquisitionDateTime, date + time);
  Put(ds, DCM_BurnedInAnnotation, "NO");
  Put(ds, DCM_DocumentTitle, spec.document_title);
  Check(ds.insertEmptyElement(DCM_ConceptNameCodeSequence), "ConceptNameCodeSequence");
  Put(ds, DCM_MIMETypeOfEncapsulatedDocument, "application/pdf");
  for (const auto& source : spec.sources) {
    DcmItem* item = nullptr;
    Check(ds.findOrCreateSequenceItem(DCM_SourceInstanceSequence, item, -2), "SourceInstanceSequence");
    Put(*item, DCM_ReferencedSOPClassUID, source.sop_class_uid);
    Put(*item, DCM_ReferencedSOPInstanceUID, source.sop_instance_uid);
  }
  std::string document = spec.pdf;
  Check(ds.putAndInsertUint32(DCM_EncapsulatedDocumentLength, static_cast<Uint32>(document.size())),
        "EncapsulatedDocumentLength");
  if (document.size() % 2 != 0) document.push_back('\0');  // OB values have even length
  Check(ds.putAndInsertUint8Array(DCM_EncapsulatedDocument,
                                  reinterpret_cast<const Uint8*>(document.data()),
                                  static_cast<unsigned long>(document.size())),
        "EncapsulatedDocument");
  return WriteDicomBuffer(file, "Encapsulated PDF " + spec.sop_instance_uid);
}

}  // namespace procnode
