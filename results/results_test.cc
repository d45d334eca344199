#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

#include "core/digest.h"
#include "core/error.h"
#include "dicom/io.h"
#include "results/encapsulated_pdf.h"
#include "results/pdf_report.h"
#include "results/secondary_capture.h"

namespace procnode {
namespace {

std::string RunCommand(const std::string& command) {
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen((command + " 2>&1").c_str(), "r"), &pclose);
  std::string out;
  std::array<char, 4096> buffer;
  while (pipe && fgets(buffer.data(), buffer.size(), pipe.get())) out += buffer.data();
  return out;
}

std::string TempFile(const std::string& name, const std::string& bytes) {
  const auto path = std::filesystem::temp_directory_path() / ("procnode-reports-" + name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path.string();
}

ReportContent Sample() {
  return {.title = "Volume statistics",
          .subtitle = "Walking-skeleton pipeline",
          .sections = {{"Figures", {{"Voxels", "16 777 216"}, {"Mean", "-712.4 HU"}}},
                       {"Provenance", {{"Job", "42"}, {"Rule", "default@1"}}}},
          .footer = "procnode 0.1.0"};
}

TEST(PdfReport, RendersAPdfWhoseTextHoldsTheFigures) {
  const std::string pdf = RenderPdfReport(Sample(), PROCNODE_FONT);
  ASSERT_EQ(pdf.rfind("%PDF-", 0), 0u);
  const std::string text = RunCommand("pdftotext " + TempFile("sample.pdf", pdf) + " -");
  EXPECT_NE(text.find("Volume statistics"), std::string::npos) << text;
  EXPECT_NE(text.find("-712.4 HU"), std::string::npos) << text;
  EXPECT_NE(text.find("default@1"), std::string::npos) << text;
}

TEST(PdfReport, LongContentContinuesOnANewPage) {
  ReportContent content = Sample();
  for (int i = 0; i < 120; ++i) content.sections[0].rows.push_back({"row " + std::to_string(i), "x"});
  const std::string pdf = RenderPdfReport(content, PROCNODE_FONT);
  const std::string info = RunCommand("pdfinfo " + TempFile("long.pdf", pdf));
  EXPECT_TRUE(std::regex_search(info, std::regex(R"(Pages:\s+3\n)"))) << info;
}

TEST(PdfReport, FallsBackToHelveticaWithoutTheFont) {
  const std::string pdf = RenderPdfReport(Sample(), "/nonexistent/font.ttf");
  EXPECT_EQ(pdf.rfind("%PDF-", 0), 0u);
}

EncapsulatedPdfSpec SampleSpec() {
  EncapsulatedPdfSpec spec;
  spec.study = {.specific_character_set = "ISO_IR 100", .patient_name = "Test^Patient",
                .patient_id = "P1", .patient_birth_date = "19700101", .patient_sex = "O",
                .study_instance_uid = "1.2.3.4", .study_date = "20200101", .study_time = "120000",
                .referring_physician_name = "", .study_id = "S1", .accession_number = "A1"};
  spec.series_instance_uid = DerivedUid("series", "k");
  spec.sop_instance_uid = DerivedUid("instance", "k");
  spec.series_description = "procnode volume statistics";
  spec.document_title = "Volume statistics";
  spec.software_version = "procnode 0.1.0";
  spec.sources = {{"1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5"}};
  spec.pdf = RenderPdfReport(Sample(), PROCNODE_FONT);
  return spec;
}

TEST(EncapsulatedPdf, RoundTripsTheDocumentAndMarksTheSeriesAsProcnodes) {
  const auto spec = SampleSpec();
  const std::string bytes = MakeEncapsulatedPdf(spec);
  auto file = ReadDicomBuffer(bytes, "result");
  DcmDataset& ds = *file->getDataset();
  OFString value;
  ASSERT_TRUE(ds.findAndGetOFString(DCM_Manufacturer, value).good());
  EXPECT_EQ(value, "procnode");
  ASSERT_TRUE(ds.findAndGetOFString(DCM_StudyInstanceUID, value).good());
  EXPECT_EQ(value, "1.2.3.4");
  const Uint8* document = nullptr;
  unsigned long length = 0;
  ASSERT_TRUE(ds.findAndGetUint8Array(DCM_EncapsulatedDocument, document, &length).good());
  Uint32 declared = 0;
  ASSERT_TRUE(ds.findAndGetUint32(DCM_EncapsulatedDocumentLength, declared).good());
  EXPECT_EQ(declared, spec.pdf.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(document), declared), spec.pdf);
}

TEST(EncapsulatedPdf, PassesDciodvfyWithoutErrors) {
  const std::string path = TempFile("epdf.dcm", MakeEncapsulatedPdf(SampleSpec()));
  const std::string report = RunCommand("dciodvfy -new " + path);
  EXPECT_EQ(report.find("Error"), std::string::npos) << report;
  EXPECT_NE(report.find("EncapsulatedPDF"), std::string::npos) << report;
}

SecondaryCaptureSpec CaptureSpec(std::size_t images) {
  SecondaryCaptureSpec spec;
  spec.study = {.patient_name = "DOE^JANE", .patient_id = "P1", .study_instance_uid = DerivedUid("test/study", "sc"),
                .study_date = "20260101", .study_time = "120000", .study_id = "1", .accession_number = "A1"};
  spec.series_instance_uid = DerivedUid("test/sc-series", "1");
  for (std::size_t k = 0; k < images; ++k) spec.sop_instance_uids.push_back(DerivedUid("test/sc", std::to_string(k)));
  spec.series_description = "procnode test key images";
  spec.modality = "CT";
  spec.software_version = "procnode test";
  spec.legend = "right lung; left lung";
  return spec;
}

ReportImage Gradient(int width, int height) {
  ReportImage image{.width = width, .height = height, .caption = "axial, slice 12"};
  for (int i = 0; i < width * height; ++i) image.rgb.insert(image.rgb.end(), {uint8_t(i), uint8_t(2 * i), uint8_t(255 - i)});
  return image;
}

TEST(SecondaryCapture, OneRgbImagePerKeyImagePassesDciodvfy) {
  const auto objects = MakeSecondaryCaptures(CaptureSpec(2), {Gradient(64, 48), Gradient(33, 21)});
  ASSERT_EQ(objects.size(), 2u);
  auto file = ReadDicomBuffer(objects[1], "sc");
  DcmDataset& ds = *file->getDataset();
  Uint16 rows = 0, columns = 0, samples = 0;
  ds.findAndGetUint16(DCM_Rows, rows);
  ds.findAndGetUint16(DCM_Columns, columns);
  ds.findAndGetUint16(DCM_SamplesPerPixel, samples);
  EXPECT_EQ(rows, 21);
  EXPECT_EQ(columns, 33);
  EXPECT_EQ(samples, 3);
  const Uint8* pixels = nullptr;
  unsigned long count = 0;
  ASSERT_TRUE(ds.findAndGetUint8Array(DCM_PixelData, pixels, &count).good());
  ASSERT_GE(count, 33u * 21u * 3u);
  EXPECT_EQ(std::vector<uint8_t>(pixels, pixels + 33 * 21 * 3), Gradient(33, 21).rgb);
  OFString comments;
  ds.findAndGetOFString(DCM_ImageComments, comments);
  EXPECT_EQ(comments, "axial, slice 12");
  for (const auto& object : objects) {
    const std::string path = TempFile("sc.dcm", object);
    const std::string report = RunCommand("dciodvfy -new " + path);
    EXPECT_EQ(report.find("Error"), std::string::npos) << report;
    EXPECT_NE(report.find("SCImage"), std::string::npos) << report;
  }
}

TEST(SecondaryCapture, AnEmptyOrMalformedImageIsRefused) {
  ReportImage short_of_pixels = Gradient(8, 8);
  short_of_pixels.rgb.resize(10);
  EXPECT_THROW(MakeSecondaryCaptures(CaptureSpec(1), {short_of_pixels}), Error);
  EXPECT_THROW(MakeSecondaryCaptures(CaptureSpec(1), {ReportImage{}}), Error);
  EXPECT_THROW(MakeSecondaryCaptures(CaptureSpec(2), {Gradient(4, 4)}), Error);
}

}  // namespace
}  // namespace procnode
