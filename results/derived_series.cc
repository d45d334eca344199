#include "results/derived_series.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/parallel.h"
#include "core/study.h"
#include "dicom/attributes.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "results/dicom_common.h"

namespace procnode {
namespace {

constexpr const char* kObject = "derived series";

void Put(DcmItem& item, const DcmTagKey& tag, const std::string& value) { PutAttribute(item, tag, value, kObject); }
void Check(const OFCondition& status, const char* what) { CheckDcmtk(status, kObject, what); }

// One rescale for the series: stored = round((value - intercept) / slope) within int16.
struct Rescale {
  double slope = 1, intercept = 0;
};

Rescale ChooseRescale(double lo, double hi, double precision) {
  constexpr double kLimit = 32767;
  Rescale r{.slope = precision > 0 ? precision : 0, .intercept = 0};
  auto fits = [&] { return r.slope > 0 && std::max(std::abs(lo - r.intercept), std::abs(hi - r.intercept)) / r.slope <= kLimit; };
  if (!(hi > lo)) {
    // Constant: any slope keeps it; the intercept is the value.
    return {.slope = r.slope > 0 ? r.slope : 1, .intercept = lo};
  }
  if (!fits()) {
    r.intercept = (lo + hi) / 2;
    if (r.slope > 0) r.intercept = std::round(r.intercept / r.slope) * r.slope;
  }
  if (!fits()) {
    r.slope = (hi - lo) / 65000;
    r.intercept = (lo + hi) / 2;
  }
  // The slope and intercept as the file will state them, so stored values are computed with those.
  r.slope = std::stod(DecimalString(r.slope));
  r.intercept = std::stod(DecimalString(r.intercept));
  return r;
}

bool Supported(const std::string& sop_class) {
  return sop_class == UID_MRImageStorage || sop_class == UID_CTImageStorage;
}

}  // namespace

DerivedSeries MakeDerivedSeries(const DerivedSeriesSpec& spec, const Volume& volume, const std::vector<float>& values) {
  if (values.size() != volume.VoxelCount()) throw Error(ErrorCode::kInvalidInput, "derived series: the values do not match the volume");
  if (spec.sources.empty()) throw Error(ErrorCode::kInvalidInput, "derived series: no source instances");
  if (spec.sop_instance_uids.size() != spec.sources.size()) {
    throw Error(ErrorCode::kInternal, "derived series: one SOP Instance UID per source instance is needed");
  }
  for (const auto& s : spec.sources) {
    if (!Supported(s.sop_class_uid)) {
      throw Error(ErrorCode::kUnsupported, "derived series: source " + s.sop_instance_uid +
                                               " is not a classic MR or CT image; only those are written back as derived series");
    }
    if (s.frames != 1 || !s.position || !s.orientation || s.rows <= 0 || s.columns <= 0) {
      throw Error(ErrorCode::kUnsupported, "derived series: source " + s.sop_instance_uid +
                                               " is multi-frame or lacks a plane position; only single-frame sources are supported");
    }
  }

  // Value range (finite values) and the display window (1st-99th percentile of a sample).
  double lo = 0, hi = 0;
  bool any = false;
  std::vector<float> sample;
  const std::size_t step = std::max<std::size_t>(1, values.size() / 200000);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float v = values[i];
    if (!std::isfinite(v)) continue;
    lo = any ? std::min<double>(lo, v) : v;
    hi = any ? std::max<double>(hi, v) : v;
    any = true;
    if (i % step == 0) sample.push_back(v);
  }
  const Rescale rescale = ChooseRescale(lo, hi, spec.precision);
  double window_low = lo, window_high = hi;
  if (!sample.empty()) {
    std::sort(sample.begin(), sample.end());
    window_low = sample[sample.size() / 100];
    window_high = sample[sample.size() - 1 - sample.size() / 100];
  }
  const double window_width = std::max(window_high - window_low, rescale.slope);

  const DicomNow now = CurrentDicomDateTime();
  DerivedSeries result{.instances = std::vector<std::string>(spec.sources.size()),
                       .rescale_slope = rescale.slope,
                       .rescale_intercept = rescale.intercept};
  const std::size_t nx = volume.dims[0], ny = volume.dims[1], nz = volume.dims[2];
  ParallelFor(spec.sources.size(), [&](std::size_t k) {
    const SourceInstance& s = spec.sources[k];
    const std::size_t rows = static_cast<std::size_t>(s.rows), columns = static_cast<std::size_t>(s.columns);
    std::vector<Sint16> pixels(rows * columns, 0);
    const FrameMapping m = MapFrame(s, volume);
    const Sint16 zero = static_cast<Sint16>(std::clamp(std::lround(-rescale.intercept / rescale.slope), -32768L, 32767L));
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < columns; ++c) {
        const long xi = std::lround(m.base[0] + r * m.per_row[0] + c * m.per_column[0]);
        const long yi = std::lround(m.base[1] + r * m.per_row[1] + c * m.per_column[1]);
        const long zi = std::lround(m.base[2] + r * m.per_row[2] + c * m.per_column[2]);
        Sint16 stored = zero;  // outside the volume: the value 0
        if (xi >= 0 && yi >= 0 && zi >= 0 && xi < static_cast<long>(nx) && yi < static_cast<long>(ny) && zi < static_cast<long>(nz)) {
          const float v = values[(static_cast<std::size_t>(zi) * ny + yi) * nx + xi];
          if (std::isfinite(v)) stored = static_cast<Sint16>(std::clamp(std::lround((v - rescale.intercept) / rescale.slope), -32768L, 32767L));
        }
        pixels[r * columns + c] = stored;
      }
    }

    DcmFileFormat file;
    DcmDataset& ds = *file.getDataset();
    const std::string& uid = spec.sop_instance_uids[k];
    // SOP Common (C.12.1); Patient (C.7.1.1) and General Study (C.7.2.1), copied from the source study
    PutStudyIdentity(ds, spec.study, kObject);
    Put(ds, DCM_SOPClassUID, s.sop_class_uid);
    Put(ds, DCM_SOPInstanceUID, uid);
    Put(ds, DCM_InstanceCreationDate, now.date);
    Put(ds, DCM_InstanceCreationTime, now.time);
    // General Series (C.7.3.1)
    const bool mr = s.sop_class_uid == UID_MRImageStorage;
    Put(ds, DCM_Modality, mr ? "MR" : "CT");
    Put(ds, DCM_SeriesInstanceUID, spec.series_instance_uid);
    Put(ds, DCM_SeriesNumber, std::to_string(spec.series_number));
    Put(ds, DCM_SeriesDescription, spec.series_description);
    Put(ds, DCM_SeriesDate, now.date);
    Put(ds, DCM_SeriesTime, now.time);
    // The source's acquisition attributes (a whitelist without PHI; see AcquisitionKeywords).
    for (const auto& [keyword, value] : spec.acquisition) {
      const auto number = DicomKeywordToTag(keyword);
      if (!number) continue;
      Check(ds.putAndInsertString(TagKey(*number), value.c_str()), keyword.c_str());  // any VR (AcquisitionMatrix is US)
    }
    if (!ds.tagExists(DCM_PatientPosition)) Check(ds.insertEmptyElement(DCM_PatientPosition), "PatientPosition");
    // Laterality (2C): required for paired body parts; unknown here, so empty when none is named.
    if (!ds.tagExists(DCM_BodyPartExamined)) Check(ds.insertEmptyElement(DCM_Laterality), "Laterality");
    // Frame of Reference (C.7.4.1): the source's, so the derived series overlays it.
    Put(ds, DCM_FrameOfReferenceUID, s.frame_of_reference_uid);
    Check(ds.insertEmptyElement(DCM_PositionReferenceIndicator), "PositionReferenceIndicator");
    // General Equipment (C.7.5.1): the marker that keeps results from becoming inputs
    Put(ds, DCM_Manufacturer, kResultManufacturer);
    Put(ds, DCM_SoftwareVersions, spec.software_version);
    // General Image (C.7.6.1)
    Put(ds, DCM_InstanceNumber, std::to_string(k + 1));
    Put(ds, DCM_ImageType, "DERIVED\\SECONDARY\\OTHER");
    Put(ds, DCM_ContentDate, now.date);
    Put(ds, DCM_ContentTime, now.time);
    Put(ds, DCM_DerivationDescription, spec.derivation_description.substr(0, 1024));
    for (const Code& code : spec.derivation_codes) {
      DcmItem* item = nullptr;
      Check(ds.findOrCreateSequenceItem(DCM_DerivationCodeSequence, item, -2), "DerivationCodeSequence");
      Put(*item, DCM_CodeValue, code.value);
      Put(*item, DCM_CodingSchemeDesignator, code.scheme);
      Put(*item, DCM_CodeMeaning, code.meaning);
    }
    DcmItem* source_item = nullptr;
    Check(ds.findOrCreateSequenceItem(DCM_SourceImageSequence, source_item, 0), "SourceImageSequence");
    Put(*source_item, DCM_ReferencedSOPClassUID, s.sop_class_uid);
    Put(*source_item, DCM_ReferencedSOPInstanceUID, s.sop_instance_uid);
    DcmItem* purpose = nullptr;
    Check(source_item->findOrCreateSequenceItem(DCM_PurposeOfReferenceCodeSequence, purpose, 0), "PurposeOfReferenceCodeSequence");
    Put(*purpose, DCM_CodeValue, "121322");
    Put(*purpose, DCM_CodingSchemeDesignator, "DCM");
    Put(*purpose, DCM_CodeMeaning, "Source image for image processing operation");
    // Image Plane (C.7.6.2): the source's plane
    const auto& p = *s.position;
    const auto& o = *s.orientation;
    Put(ds, DCM_ImagePositionPatient, DecimalString(p[0]) + "\\" + DecimalString(p[1]) + "\\" + DecimalString(p[2]));
    Put(ds, DCM_ImageOrientationPatient, DecimalString(o[0]) + "\\" + DecimalString(o[1]) + "\\" + DecimalString(o[2]) + "\\" +
                                             DecimalString(o[3]) + "\\" + DecimalString(o[4]) + "\\" + DecimalString(o[5]));
    Put(ds, DCM_PixelSpacing, DecimalString(s.pixel_spacing[0]) + "\\" + DecimalString(s.pixel_spacing[1]));
    if (s.slice_thickness > 0) {
      Put(ds, DCM_SliceThickness, DecimalString(s.slice_thickness));
    } else {
      Check(ds.insertEmptyElement(DCM_SliceThickness), "SliceThickness");
    }
    // MR Image (C.8.3.1) / CT Image (C.8.2.1): type 1 and 2 attributes the source did not give
    if (mr) {
      if (!ds.tagExists(DCM_ScanningSequence)) Put(ds, DCM_ScanningSequence, "RM");  // research mode: unknown
      if (!ds.tagExists(DCM_SequenceVariant)) Put(ds, DCM_SequenceVariant, "NONE");
      for (const DcmTagKey& tag : {DCM_ScanOptions, DCM_MRAcquisitionType, DCM_EchoTime, DCM_EchoTrainLength, DCM_RepetitionTime}) {
        if (!ds.tagExists(tag)) Check(ds.insertEmptyElement(tag), "MR Image attribute");
      }
    } else {
      for (const DcmTagKey& tag : {DCM_KVP, DCM_AcquisitionNumber}) {
        if (!ds.tagExists(tag)) Check(ds.insertEmptyElement(tag), "CT Image attribute");
      }
    }
    // Image Pixel (C.7.6.3), signed 16-bit, with the series' rescale and a window
    Check(ds.putAndInsertUint16(DCM_SamplesPerPixel, 1), "SamplesPerPixel");
    Put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
    Check(ds.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(rows)), "Rows");
    Check(ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(columns)), "Columns");
    Check(ds.putAndInsertUint16(DCM_BitsAllocated, 16), "BitsAllocated");
    Check(ds.putAndInsertUint16(DCM_BitsStored, 16), "BitsStored");
    Check(ds.putAndInsertUint16(DCM_HighBit, 15), "HighBit");
    Check(ds.putAndInsertUint16(DCM_PixelRepresentation, 1), "PixelRepresentation");
    Put(ds, DCM_RescaleIntercept, DecimalString(rescale.intercept));
    Put(ds, DCM_RescaleSlope, DecimalString(rescale.slope));
    Put(ds, DCM_RescaleType, "US");  // derived values: no longer in the source's units
    Put(ds, DCM_WindowCenter, DecimalString((window_low + window_high) / 2));
    Put(ds, DCM_WindowWidth, DecimalString(window_width));
    Check(ds.putAndInsertUint16Array(DCM_PixelData, reinterpret_cast<const Uint16*>(pixels.data()), static_cast<unsigned long>(pixels.size())),
          "PixelData");
    result.instances[k] = WriteDicomBuffer(file, "derived image " + uid);
  });
  return result;
}

}  // namespace procnode
