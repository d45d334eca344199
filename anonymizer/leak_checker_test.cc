#include "anonymizer/leak_checker.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>

#include "anonymizer/pdf_text.h"
#include "results/pdf_report.h"

namespace procnode {
namespace {

// A report as the pipeline renders it (embedded DejaVu, compressed streams), naming `patient`.
std::string Report(const std::string& patient) {
  ReportContent content;
  content.title = "Lung density report";
  content.subtitle = "chest CT";
  ReportSection header;
  header.heading = "Patient";
  header.rows = {{"Name", patient}, {"Study date", "2026-11-21"}};
  content.sections.push_back(header);
  content.footer = "procnode";
  return RenderPdfReport(content, PROCNODE_FONT);
}

const std::vector<std::string> kTerms = PhiTerms({.patient_name = "MÜLLER^JOHANNA", .patient_id = "PID-4711-X"});

TEST(PdfText, ReadsThePageTextThatTheCompressedBytesHide) {
  const std::string pdf = Report("MÜLLER, JOHANNA");
  ASSERT_TRUE(LooksLikePdf(pdf));
  EXPECT_EQ(pdf.find("JOHANNA"), std::string::npos) << "the page text should be compressed and glyph-encoded";
  const auto text = PdfText(pdf);
  ASSERT_TRUE(text.has_value());
  EXPECT_NE(text->find("MÜLLER, JOHANNA"), std::string::npos) << *text;
  EXPECT_NE(text->find("Lung density report"), std::string::npos);
}

TEST(LeakChecker, FindsANameInAReportFileAndInItsEncapsulatedPdf) {
  const std::string pdf = Report("MÜLLER, JOHANNA");
  const auto file_hits = ScanBytes(pdf, kTerms, "report.pdf");
  ASSERT_FALSE(file_hits.empty());
  EXPECT_EQ(file_hits.front().where, "report.pdf PDF text");

  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  ASSERT_TRUE(ds.putAndInsertString(DCM_MIMETypeOfEncapsulatedDocument, "application/pdf").good());
  ASSERT_TRUE(ds.putAndInsertUint8Array(DCM_EncapsulatedDocument, reinterpret_cast<const Uint8*>(pdf.data()),
                                        static_cast<unsigned long>(pdf.size())).good());
  const auto hits = ScanDataset(ds, kTerms, "report-pdf");
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits.front().where, "report-pdf (0042,0011) PDF text");
  bool first_name = false;
  for (const auto& hit : hits) first_name = first_name || kTerms.at(static_cast<std::size_t>(hit.term)) == "JOHANNA";
  EXPECT_TRUE(first_name);
}

TEST(LeakChecker, APseudonymousReportIsClean) {
  const std::string pdf = Report("PN-7F3A9C");
  EXPECT_TRUE(ScanBytes(pdf, kTerms, "report.pdf").empty());
}

TEST(LeakChecker, APdfThatCannotBeReadCannotBeCleared) {
  const auto hits = ScanBytes("%PDF-1.4\n this is not a PDF body", kTerms, "broken.pdf");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits.front().term, -1);
  EXPECT_NE(hits.front().where.find("unreadable"), std::string::npos);
  EXPECT_FALSE(PdfText("not a pdf").has_value());
}

}  // namespace
}  // namespace procnode
