"""Deterministic benchmark workloads: English and Chinese documents of 25-260 words, and /v1/rerank bodies."""

from __future__ import annotations

import random

EN_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if so what can out about who more will time up "
    "into do some other could them than then its only two may first any like now my these over such our man me "
    "even most made after also did many before must through back years where much your way well down should "
    "because each just those people how too little state good very make world still own see men work long get "
    "here between both life being under never day same another know while last might us great old year off "
    "come since against go came right used take three himself few house use during without again place around "
    "however home small found thought went say part once general high upon school every does got united left "
    "number course war until always away something fact though water less public put think almost hand enough "
    "far took head yet government system better set told nothing night end why called didn't eyes find going "
    "look asked later knew point next program city business give group toward young days let room president "
    "side social given present several order national possible rather second face per among form important often "
    "things looked early white case john become large big need four within felt along children saw best church "
    "ever least power development light thing seemed family interest want members mind country area others done "
    "turned although open problem certain kind began different door thus help sense means whole matter perhaps "
    "itself york times law human line above name example action company hands local show whether five history "
    "gravity capital retrieval ranking model query document passage answer search engine neural network data"
).split()
ZH_WORDS = (
    "我们 中国 北京 首都 检索 排序 模型 文档 问题 答案 搜索 引擎 神经 网络 数据 学习 机器 人工 智能 系统 "
    "发展 经济 社会 文化 历史 科学 技术 研究 教育 学生 老师 学校 城市 国家 政府 政策 市场 企业 公司 产品 "
    "服务 用户 需求 信息 网络 平台 应用 方法 理论 实践 经验 结果 过程 问题 解决 分析 重要 主要 基本 一般 "
    "特别 非常 已经 正在 可以 需要 能够 应该 通过 进行 提高 加强 促进 实现 保持 建立 形成 提供 支持 影响 "
    "重力 物体 相互 吸引 地球 太阳 月亮 天气 气候 环境 保护 资源 能源 交通 医疗 健康 生活 工作 时间 空间"
).split()
QUERIES_EN = [
    "what is the capital of china", "how does gravity work", "best practices for neural network training",
    "history of the united states government", "how to improve search engine ranking",
    "why do children need good schools", "what causes climate change", "how do companies develop new products",
]
QUERIES_ZH = ["中国的首都是哪里", "重力是如何产生的", "如何提高搜索引擎的排序效果", "人工智能对社会有什么影响",
              "怎样保护环境和能源", "城市交通问题如何解决", "机器学习模型如何训练", "健康生活需要注意什么"]


def document(rng: random.Random, chinese: bool) -> str:
    n = rng.randint(25, 260)
    if chinese:
        return "".join(rng.choice(ZH_WORDS) for _ in range(n)) + "。"
    words = [rng.choice(EN_WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def workload(queries: int, documents: int, seed: int) -> list[tuple[str, list[str]]]:
    """`queries` queries, each with `documents` documents, English and Chinese alternating."""
    rng = random.Random(seed)
    out = []
    for q in range(queries):
        query = (QUERIES_ZH if q % 2 else QUERIES_EN)[(q // 2) % 8]
        out.append((query, [document(rng, chinese=bool(d % 2)) for d in range(documents)]))
    return out


WORKLOADS = {
    "W1": lambda: workload(1, 50, seed=1),
    "W2": lambda: workload(32, 20, seed=2),
}


REQUEST_WORDS = (
    "model retrieval passage query answer search index vector ranking relevance document context language "
    "training data evaluation score network layer attention token embedding capital city river mountain "
    "history science physics gravity energy market price policy health medicine protein cell climate ocean "
    "北京 上海 检索 排序 模型 文档 问题 答案 数据 学习"
).split()


def rerank_request(rng: random.Random, docs: int, doc_words: int) -> dict[str, object]:
    """A /v1/rerank body: a 10-word query and `docs` documents of about `doc_words` words (half to 1.5 times)."""
    def text(n: int) -> str:
        return " ".join(rng.choice(REQUEST_WORDS) for _ in range(n))

    return {"query": text(10), "documents": [text(rng.randint(doc_words // 2, doc_words * 3 // 2))
                                             for _ in range(docs)], "return_documents": False}
