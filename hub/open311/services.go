package open311

import (
	"slices"
	"time"

	"github.com/shequ/shequ/protocol"
)

// Changeset is when the service list or a service definition last changed
// (discovery's changeset): bump it with any change to services below, so
// clients refresh what they cache.
var Changeset = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// serviceInfo describes one category as a GeoReport service.
type serviceInfo struct {
	name        string // Chinese
	description string // Chinese, then the English name
	group       string
	keywords    string
	extra       []attribute // attributes beyond the common ones
}

// Groups of services (themes).
const (
	groupHousing  = "房屋管理"
	groupGreen    = "绿化环境"
	groupProperty = "物业管理"
	groupOther    = "其他"
)

var yesNo = []value{{Key: "yes", Name: "是"}, {Key: "no", Name: "否"}}

// Category-specific attribute codes.
const (
	attrDangerNow = "danger_now" // load_bearing: is anyone in danger now
	attrOngoing   = "ongoing"    // illegal_construction: is building going on now
)

var services = map[protocol.FeedbackCategory]serviceInfo{
	protocol.CatIllegalConstruction: {
		name: "违法搭建", group: groupHousing,
		description: "违法搭建建筑物、构筑物（阳台、屋顶、天井加建等）。Illegal construction.",
		keywords:    "违建,搭建,加建,违章建筑",
		extra: []attribute{{Variable: true, Code: attrOngoing, Datatype: "singlevaluelist", Order: 5,
			Description: "是否正在施工？Is building going on now?", Values: yesNo}},
	},
	protocol.CatLoadBearing: {
		name: "破坏房屋承重结构", group: groupHousing,
		description: "拆改承重墙、梁、柱等破坏房屋承重结构的行为。Damage to load-bearing structures.",
		keywords:    "承重墙,拆墙,结构,装修",
		extra: []attribute{{Variable: true, Code: attrDangerNow, Datatype: "singlevaluelist", Required: true, Order: 5,
			Description: "现在是否有人身危险？有危险请同时拨打 110 或 119。Is anyone in danger now? If so, also call 110 or 119.",
			Values:      yesNo}},
	},
	protocol.CatChangeOfUse: {
		name: "擅自改变物业使用性质", group: groupHousing,
		description: "住宅改作经营、群租等擅自改变物业使用性质的行为。Unauthorised change of use of a property.",
		keywords:    "住改商,改变用途,经营",
	},
	protocol.CatFacade: {
		name: "破坏房屋外貌", group: groupHousing,
		description: "擅自改变外墙、门窗、立面等破坏房屋外貌的行为。Damage to a building's facade.",
		keywords:    "外墙,立面,开窗,门窗",
	},
	protocol.CatIllegalRenting: {
		name: "房屋违规租赁", group: groupHousing,
		description: "群租、分隔出租等违规租赁行为。Illegal renting (overcrowding, partitioned rooms).",
		keywords:    "群租,隔断,出租",
	},
	protocol.CatGreenSpace: {
		name: "占绿毁绿", group: groupGreen,
		description: "侵占、毁坏公共绿地和树木。Encroaching on or destroying green space.",
		keywords:    "绿地,树木,毁绿,占绿",
	},
	protocol.CatPropertyDuty: {
		name: "物业未履职尽责", group: groupProperty,
		description: "物业服务企业未依法履行管理职责。A property management company not doing its duty.",
		keywords:    "物业,管理,不作为",
	},
	protocol.CatOther: {
		name: "其他", group: groupOther,
		description: "其他城市管理问题。Other city-management problems.",
		keywords:    "其他",
	},
}

// Common attribute codes.
const (
	attrKind       = "kind"
	attrBuilding   = "building"
	attrUnit       = "unit"
	attrRoom       = "room"
	attrExternalID = "external_id"
)

// Limits of request fields, in characters.
const (
	maxDescription  = 4000 // the specification's limit
	maxExternalID   = 64
	maxAddress      = 200
	maxNameOrEmail  = 200 // first_name, last_name, email, device_id, account_id: checked, then dropped
	maxMediaURL     = 2000
	maxAttributeLen = 200
)

var kindNames = map[protocol.FeedbackKind]string{
	protocol.KindComplaint: "投诉", protocol.KindConsultation: "咨询", protocol.KindHelp: "求助", protocol.KindSuggestion: "建议",
}

func commonAttributes() []attribute {
	kinds := make([]value, 0, len(protocol.FeedbackKinds))
	for _, k := range protocol.FeedbackKinds {
		kinds = append(kinds, value{Key: string(k), Name: kindNames[k]})
	}
	where := func(code, zh, en string, order int) attribute {
		return attribute{Variable: true, Code: code, Datatype: "string", Order: order,
			DatatypeDescription: "至多 16 个字 / at most 16 characters", Description: zh + " " + en}
	}
	return []attribute{
		{Variable: true, Code: attrKind, Datatype: "singlevaluelist", Required: true, Order: 1,
			Description: "诉求类型 Kind of request", Values: kinds},
		where(attrBuilding, "楼号（如 3号）", "Building", 2),
		where(attrUnit, "单元", "Unit", 3),
		where(attrRoom, "室", "Room", 4),
		{Variable: true, Code: attrExternalID, Datatype: "string", Order: 9,
			DatatypeDescription: "1-64 个字符 [A-Za-z0-9._-] / 1-64 characters of [A-Za-z0-9._-]",
			Description:         "贵方系统的工单编号：同一编号只受理一次 Your own reference: a request is filed once per reference"},
	}
}

// definition returns the service definition of a category.
func definition(c protocol.FeedbackCategory) serviceDefinition {
	attrs := commonAttributes()
	attrs = append(attrs, services[c].extra...)
	slices.SortFunc(attrs, func(a, b attribute) int { return a.Order - b.Order })
	return serviceDefinition{Code: string(c), Attributes: attrs}
}

func serviceList() []service {
	out := make([]service, 0, len(protocol.FeedbackCategories))
	for _, c := range protocol.FeedbackCategories {
		si := services[c]
		out = append(out, service{Code: string(c), Name: si.name, Description: si.description, Metadata: true,
			Type: "realtime", Keywords: si.keywords, Group: si.group})
	}
	return out
}
