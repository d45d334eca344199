// The node's delivery service: results sent on to PACS (C-STORE, STOW-RS) and BIDS
// destinations, retried with backoff, kept as dead letters until a resend.
#include "node/node.h"

#include <chrono>
#include <string>
#include <vector>

#include "anonymizer/anonymizing_source.h"
#include "core/error.h"
#include "core/log.h"
#include "node/bids_export.h"
#include "orthanc/orthanc_study_source.h"
#include "routing/bids_mapping.h"

namespace procnode {

nlohmann::json Node::ResendJob(int64_t id, const std::string& who) {
  const int count = queue_.Resend(id, who);
  audit_.Record({.who = who, .action = "job.resend", .object = "job " + std::to_string(id), .outcome = "success",
                 .detail = std::to_string(count) + " delivery(ies) queued again"});
  delivery_wake_.notify_all();
  nlohmann::json out = *JobDetail(id);
  out["resent"] = count;
  return out;
}

void Node::DeliveryLoop() {
  const std::string owner = pool_->owner() + "/delivery";
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
    }
    std::optional<Delivery> due;
    try {
      due = queue_.ClaimDelivery(owner, 600);
    } catch (const std::exception& e) {
      Log(LogLevel::kWarning, std::string("deliveries: ") + e.what());
    }
    if (due) {
      Deliver(*due);
      continue;
    }
    std::unique_lock lock(mutex_);
    delivery_wake_.wait_for(lock, std::chrono::milliseconds(static_cast<int64_t>(config_.poll_seconds * 1000)),
                            [this] { return stopping_; });
  }
}

void Node::Deliver(const Delivery& delivery) {
  const std::string owner = pool_->owner() + "/delivery";
  const std::string what = "job " + std::to_string(delivery.job_id) + ": delivery to " + delivery.destination;
  try {
    const auto found = config_.destination_kinds.find(delivery.destination);
    if (found == config_.destination_kinds.end()) {
      throw Error(ErrorCode::kInvalidInput, "destination \"" + delivery.destination + "\" is no longer configured");
    }
    const NodeConfig::Destination& destination = found->second;
    const nlohmann::json body{{"Resources", delivery.instances}, {"Synchronous", true}};
    if (destination.kind == "dicomweb") {  // STOW-RS, by the DICOMweb plugin's client
      rest_.Post("/dicom-web/servers/" + destination.target + "/stow", body.dump());
    } else if (destination.kind == "bids") {
      DeliverToBids(delivery, destination, what);
    } else {
      rest_.Post("/modalities/" + destination.target + "/store", body.dump());
    }
    queue_.DeliverySent(delivery.id, owner);
    Log(LogLevel::kInfo, what + ": " + std::to_string(delivery.instances.size()) + " object(s) sent (attempt " +
                             std::to_string(delivery.attempts) + ")");
  } catch (const std::exception& e) {
    try {
      const std::string state = queue_.DeliveryFailed(delivery.id, owner, e.what(), config_.delivery_backoff_seconds);
      Log(LogLevel::kWarning, what + " failed (attempt " + std::to_string(delivery.attempts) + "): " + e.what() +
                                  (state == "dead" ? "; dead letter, resend from the job" : "; will retry"));
    } catch (const std::exception& db) {
      Log(LogLevel::kWarning, what + ": cannot record the failure: " + db.what());
    }
  }
}

void Node::DeliverToBids(const Delivery& delivery, const NodeConfig::Destination& destination, const std::string& what) {
  const auto job = queue_.Get(delivery.job_id);
  if (!job) throw Error(ErrorCode::kNotFound, "job " + std::to_string(delivery.job_id) + " no longer exists");
  if (!job->spec.anonymize) {
    throw Error(ErrorCode::kInvalidInput, "\"" + delivery.destination + "\" is a BIDS export: only anonymized routes may send to it");
  }
  OrthancStudySource clinical(rest_);
  AnonymizingStudySource deidentified(clinical, AnonymizationOf(*job));
  std::vector<BidsDerivative> derivatives;
  if (!job->spec.anonymize->results_to_clinical) {
    for (std::size_t i = 0; i < delivery.instances.size(); ++i) {
      const auto attributes = clinical.InstanceAttributes(delivery.instances[i]);
      const std::string sop_class = attributes && attributes->contains(0x00080016) ? attributes->at(0x00080016) : "";
      const std::string kind = sop_class == "1.2.840.10008.5.1.4.1.1.66.4"      ? "seg"
                               : sop_class == "1.2.840.10008.5.1.4.1.1.104.1"   ? "report"
                               : sop_class.rfind("1.2.840.10008.5.1.4.1.1.88", 0) == 0 ? "sr"
                                                                                  : "result";
      derivatives.push_back({job->spec.processor + kind + std::to_string(i + 1), ".dcm",
                             clinical.FetchInstance(delivery.instances[i])});
    }
    if (!job->result_json.empty()) {
      const auto summary = nlohmann::json::parse(job->result_json, nullptr, false);
      if (summary.is_object() && summary.contains("measurements")) {
        derivatives.push_back({job->spec.processor + "measurements", ".json", summary["measurements"].dump(2) + "\n"});
      }
    }
  }
  BidsDataset dataset{.root = destination.target, .name = destination.dataset_name, .group = destination.group,
                      .file_mode = destination.file_mode, .dir_mode = destination.dir_mode};
  const auto result = ExportStudyToBids(clinical, deidentified, job->study_id, ParseBidsMapping(job->spec.bids), dataset,
                                        derivatives, [&deidentified] { return deidentified.PhiTerms(); });
  std::string skipped;
  for (const auto& s : result.skipped) skipped += (skipped.empty() ? "" : "; ") + s;
  Log(LogLevel::kInfo, what + ": " + result.subject + "/" + result.session + ", " + std::to_string(result.written.size()) +
                           " file(s) written" + (skipped.empty() ? "" : "; skipped: " + skipped));
}

}  // namespace procnode
